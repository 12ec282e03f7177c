//! A receive buffer that refuses to grow past one whole unit (frame or encrypted package) plus
//! the latest chunk pushed, so a caller that forgets to drain it cannot make it grow without end.

/// Bytes received but not yet consumed, with the consumed prefix dropped lazily.
#[derive(Debug, Default)]
pub(super) struct InBuf {
    data: Vec<u8>,
    start: usize,
    limit: usize,
}

impl InBuf {
    /// A buffer that accepts a push only while at most `limit` unconsumed bytes are held.
    pub(super) fn new(limit: usize) -> Self {
        InBuf {
            data: Vec::new(),
            start: 0,
            limit,
        }
    }

    /// Appends `bytes`; `Err(held)` if more than `limit` bytes were already waiting, which means
    /// the owner is not draining whole units as they complete.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Result<(), usize> {
        let held = self.len();
        if held > self.limit {
            return Err(held);
        }
        if self.start > 0 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
        Ok(())
    }

    /// The unconsumed bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or_default()
    }

    /// Number of unconsumed bytes.
    pub(super) fn len(&self) -> usize {
        self.data.len().saturating_sub(self.start)
    }

    /// Marks `n` bytes as consumed (clamped to what is held).
    pub(super) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.data.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }

    /// Removes and returns every unconsumed byte.
    pub(super) fn take(&mut self) -> Vec<u8> {
        let rest = self.bytes().to_vec();
        self.data.clear();
        self.start = 0;
        rest
    }
}
