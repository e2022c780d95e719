//! Sans-IO media core of Boomerang: no tokio, no sockets, no clock.
