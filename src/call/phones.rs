//! Agents' phones as routing sees them: an agent whose phone registers (a SIP account) can be
//! ready only while a registration of that account is current; an agent on a static URI, or
//! without any phone configured, always can. The driver's registrar publishes each account's
//! registration expiry into [`Registrations`] after every REGISTER; [`SipPhones`] reads it for
//! routing ([`PhoneRegistry`]), and [`watch`] sets a ready agent not ready once the
//! registration is gone (expired or removed).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::routing::config::AgentConfig;
use crate::routing::router::AgentState;
use crate::routing::{PhoneRegistry, Routing};

/// Account -> when its last current binding expires. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Registrations(Arc<RwLock<HashMap<String, Instant>>>);

impl Registrations {
    /// The registrar's view of `user` after a REGISTER: registered until `expiry`, or not.
    pub fn publish(&self, user: &str, expiry: Option<Instant>) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        match expiry {
            Some(t) => {
                map.insert(user.to_string(), t);
            }
            None => {
                map.remove(user);
            }
        }
    }

    pub fn is_registered(&self, user: &str, now: Instant) -> bool {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        map.get(user).is_some_and(|&t| t > now)
    }
}

/// Routing's phone registry over the SIP registrar. Until [`SipPhones::attach`] (the SIP
/// transport is not started yet) no registering phone counts as registered.
#[derive(Debug, Default)]
pub struct SipPhones {
    registrations: OnceLock<Registrations>,
}

impl SipPhones {
    pub fn attach(&self, registrations: Registrations) {
        let _ = self.registrations.set(registrations);
    }

    fn registered_at(&self, agent: &AgentConfig, now: Instant) -> bool {
        match (&agent.uri, &agent.sip_account) {
            (None, Some(user)) => self
                .registrations
                .get()
                .is_some_and(|r| r.is_registered(user, now)),
            // A static URI, or no phone configured: nothing to wait for.
            _ => true,
        }
    }
}

impl PhoneRegistry for SipPhones {
    fn is_registered(&self, agent: &AgentConfig) -> bool {
        self.registered_at(agent, Instant::now())
    }
}

/// Every `period`: a ready agent whose phone's registration is gone becomes not ready
/// ("phone unregistered"). Runs until aborted.
pub async fn watch(phones: Arc<SipPhones>, routing: Arc<Routing>, period: Duration) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = Instant::now();
        let gone: Vec<String> = {
            let core = routing.core();
            core.config()
                .agents
                .iter()
                .filter(|a| !phones.registered_at(a, now))
                .filter(|a| core.agent_state(&a.id) == Some(AgentState::Ready))
                .map(|a| a.id.clone())
                .collect()
        };
        for id in gone {
            if let Err(e) = routing.phone_unregistered(&id) {
                tracing::warn!("agent {id}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(sip_account: Option<&str>, uri: Option<&str>) -> AgentConfig {
        AgentConfig {
            id: "a1".into(),
            name: "A".into(),
            sip_account: sip_account.map(str::to_string),
            uri: uri.map(str::to_string),
            skills: Default::default(),
            groups: Default::default(),
        }
    }

    #[test]
    fn a_registering_phone_counts_while_its_registration_lasts() {
        let phones = SipPhones::default();
        let now = Instant::now();
        let registering = agent(Some("agent1"), None);
        assert!(!phones.registered_at(&registering, now), "no SIP transport yet");
        let regs = Registrations::default();
        phones.attach(regs.clone());
        assert!(!phones.registered_at(&registering, now));
        regs.publish("agent1", Some(now + Duration::from_secs(60)));
        assert!(phones.registered_at(&registering, now));
        assert!(
            !phones.registered_at(&registering, now + Duration::from_secs(61)),
            "expired"
        );
        regs.publish("agent1", None);
        assert!(!phones.registered_at(&registering, now), "unregistered");
        assert!(
            phones.registered_at(&agent(None, Some("sip:a@127.0.0.1")), now),
            "static URI"
        );
        assert!(
            phones.registered_at(&agent(None, None), now),
            "no phone configured"
        );
    }
}
