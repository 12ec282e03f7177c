//! RTM over FPNN (being written).
use crate::config::Config;
use tokio_util::sync::CancellationToken;
/// placeholder
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct OptionsError;
/// placeholder
pub struct Options;
impl Options {
    /// placeholder
    pub fn from_config(_c: &Config) -> Result<Options, OptionsError> {
        Err(OptionsError)
    }
}
/// placeholder
pub fn start(_o: Options, _s: CancellationToken) -> super::Link {
    unreachable!()
}
