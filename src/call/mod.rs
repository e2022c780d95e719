//! Call legs: a leg owns its dialog and RTP session.
