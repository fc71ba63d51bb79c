//! The bounded backlog of encoded samples waiting to be sent, oldest first.
//! Full, it drops the oldest sample to make room for the newest, and says so.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct Backlog {
    items: VecDeque<Vec<u8>>,
    capacity: usize,
}

impl Backlog {
    pub fn new(capacity: usize) -> Backlog {
        Backlog { items: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// Queues one sample; returns how many old ones were dropped for it (0 or 1).
    pub fn push(&mut self, sample: Vec<u8>) -> u64 {
        let mut dropped = 0;
        while self.items.len() >= self.capacity {
            self.items.pop_front();
            dropped += 1;
        }
        self.items.push_back(sample);
        dropped
    }

    /// The oldest samples, concatenated, at most `max_bytes` (but at least one
    /// sample), and how many they are.
    pub fn front(&self, max_bytes: usize) -> (Vec<u8>, usize) {
        let mut body = Vec::new();
        let mut n = 0;
        for s in &self.items {
            if n > 0 && body.len() + s.len() > max_bytes {
                break;
            }
            body.extend_from_slice(s);
            n += 1;
        }
        (body, n)
    }

    /// Forgets the `n` oldest samples (sent, or refused for good).
    pub fn pop(&mut self, n: usize) {
        let n = n.min(self.items.len());
        self.items.drain(..n);
        if self.items.is_empty() {
            // A minute of samples after an outage is not kept as slack.
            self.items.shrink_to_fit();
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_drops_the_oldest_and_keeps_order() {
        let mut b = Backlog::new(3);
        let dropped: u64 = (0u8..5).map(|i| b.push(vec![b'a' + i])).sum();
        assert_eq!(dropped, 2);
        assert_eq!(b.front(100), (b"cde".to_vec(), 3));
        assert_eq!(b.front(2), (b"cd".to_vec(), 2));
        assert_eq!(b.front(0), (b"c".to_vec(), 1), "one sample goes even when larger than the cap");
        b.pop(2);
        assert_eq!(b.front(100), (b"e".to_vec(), 1));
        b.pop(5);
        assert!(b.is_empty());
    }
}
