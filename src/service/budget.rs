//! The server-wide budget for responses built but not yet taken by their
//! clients (`--max-buffered-bytes`).
//!
//! A handler reserves its encoded response's size before answering; the
//! reservation ([`Held`]) travels with the response (in its extensions,
//! then in the transport's body) and is given back when the body is sent
//! or dropped. A client that never reads can so hold at most what the
//! budget allows, and the transport's send timeout takes even that back.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;

/// Bytes of responses in flight (a gauge `/metrics` shows), and their cap.
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
    pub(crate) fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Held> {
        let max = i64::try_from(self.max).unwrap_or(i64::MAX);
        let add = i64::try_from(bytes).ok()?;
        self.used
            .inner()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(add).filter(|&total| total <= max)
            })
            .ok()?;
        Some(Held(Arc::new(Reservation {
            budget: self.clone(),
            bytes,
        })))
    }

    pub(crate) fn used(&self) -> usize {
        usize::try_from(self.used.get()).unwrap_or(0)
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }
}

/// A reservation; the bytes return to the budget when the last clone goes.
/// (Clone because HTTP extensions must be.)
#[derive(Debug, Clone)]
pub(crate) struct Held(#[allow(dead_code)] Arc<Reservation>);

#[derive(Debug)]
struct Reservation {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // `bytes` fitted in an i64 when it was reserved.
        self.budget.used.dec_by(self.bytes as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_capped_and_given_back() {
        let budget = Budget::new(100);
        let a = budget.reserve(60).unwrap();
        assert!(budget.reserve(50).is_none());
        let b = budget.reserve(40).unwrap();
        assert_eq!(budget.used(), 100);
        let a2 = a.clone();
        drop(a);
        assert_eq!(budget.used(), 100, "a clone still holds it");
        drop(a2);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
        assert!(budget.reserve(101).is_none());
        assert!(budget.reserve(usize::MAX).is_none());
    }
}
