//! Budgets for responses built but not yet taken by their clients: one
//! for the server (`--max-buffered-bytes`) and one per connection
//! (`--max-buffered-bytes-per-connection`), so that one client that does
//! not read cannot hold the whole server's budget.
//!
//! A handler reserves its encoded response's size in both before
//! answering; the reservation ([`Held`]) travels with the response (in its
//! extensions, then in the transport's body) and is given back when the
//! body is sent or dropped. A client that never reads can so hold at most
//! its connection's share, and the transport's send timeout takes even
//! that back.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;

/// Bytes of responses in flight (a gauge `/metrics` can show), and their
/// cap.
#[derive(Debug)]
pub(crate) struct Budget {
    used: Gauge,
    max: usize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            used: Gauge::default(),
            max,
        })
    }

    /// The gauge of bytes in use, for the metrics registry.
    pub(crate) fn gauge(&self) -> &Gauge {
        &self.used
    }

    /// Reserves `bytes`, or `None` when the budget cannot hold them.
    fn take(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let max = i64::try_from(self.max).unwrap_or(i64::MAX);
        let add = i64::try_from(bytes).ok()?;
        self.used
            .inner()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(add).filter(|&total| total <= max)
            })
            .ok()?;
        Some(Reservation {
            budget: self.clone(),
            bytes: add,
        })
    }

    pub(crate) fn used(&self) -> usize {
        usize::try_from(self.used.get()).unwrap_or(0)
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }
}

/// Which budget refused a reservation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Server,
    Connection,
}

/// Reserves `bytes` in the server's budget and, when given, the
/// connection's; all or nothing.
pub(crate) fn reserve(
    server: &Arc<Budget>,
    connection: Option<&Arc<Budget>>,
    bytes: usize,
) -> Result<Held, Refused> {
    let connection = match connection {
        Some(c) => Some(c.take(bytes).ok_or(Refused::Connection)?),
        None => None,
    };
    let server = server.take(bytes).ok_or(Refused::Server)?;
    Ok(Held(Arc::new((server, connection))))
}

/// Reservations (the server's, the connection's); the bytes return to
/// their budgets when the last clone goes. (Clone because HTTP extensions
/// must be.)
#[derive(Debug, Clone)]
pub(crate) struct Held(#[allow(dead_code)] Arc<(Reservation, Option<Reservation>)>);

#[derive(Debug)]
struct Reservation {
    budget: Arc<Budget>,
    bytes: i64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.dec_by(self.bytes);
    }
}

/// A connection's own budget, put in each request's extensions by the
/// transport.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionBudget(pub Arc<Budget>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_capped_and_given_back() {
        let server = Budget::new(100);
        let a = reserve(&server, None, 60).unwrap();
        assert!(reserve(&server, None, 50).is_err());
        let b = reserve(&server, None, 40).unwrap();
        assert_eq!(server.used(), 100);
        let a2 = a.clone();
        drop(a);
        assert_eq!(server.used(), 100, "a clone still holds it");
        drop(a2);
        assert_eq!(server.used(), 40);
        drop(b);
        assert_eq!(server.used(), 0);
        assert!(reserve(&server, None, 101).is_err());
        assert!(reserve(&server, None, usize::MAX).is_err());
    }

    #[test]
    fn a_connection_holds_at_most_its_share() {
        let server = Budget::new(100);
        let (one, two) = (Budget::new(30), Budget::new(30));
        let a = reserve(&server, Some(&one), 30).unwrap();
        // The first connection is full; the second still gets its share.
        assert_eq!(
            reserve(&server, Some(&one), 1).unwrap_err(),
            Refused::Connection
        );
        let b = reserve(&server, Some(&two), 30).unwrap();
        assert_eq!((server.used(), one.used(), two.used()), (60, 30, 30));
        // A refusal by the server takes nothing from the connection.
        let big = Budget::new(1000);
        assert_eq!(
            reserve(&server, Some(&big), 50).unwrap_err(),
            Refused::Server
        );
        assert_eq!(big.used(), 0);
        drop((a, b));
        assert_eq!((server.used(), one.used(), two.used()), (0, 0, 0));
    }
}
