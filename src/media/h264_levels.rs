//! The H.264 levels (ITU-T H.264 Table A-1): how many macroblocks a frame (MaxFS) and a second
//! (MaxMBPS) each level allows. Shared, by path, with the test stand-ins of hardware encoders
//! (`tests/standins`), which refuse a size their level cannot carry as the real drivers do.

/// `(level, MaxMBPS, MaxFS)`, lowest first.
pub const LEVELS: &[(&str, u64, u64)] = &[
    ("1", 1_485, 99),
    ("1b", 1_485, 99),
    ("1.1", 3_000, 396),
    ("1.2", 6_000, 396),
    ("1.3", 11_880, 396),
    ("2", 11_880, 396),
    ("2.1", 19_800, 792),
    ("2.2", 20_250, 1_620),
    ("3", 40_500, 1_620),
    ("3.1", 108_000, 3_600),
    ("3.2", 216_000, 5_120),
    ("4", 245_760, 8_192),
    ("4.1", 245_760, 8_192),
    ("4.2", 522_240, 8_704),
    ("5", 589_824, 22_080),
    ("5.1", 983_040, 36_864),
    ("5.2", 2_073_600, 36_864),
];

/// Macroblocks per frame and per second of `width`×`height` at `fps`.
pub fn macroblocks(width: u32, height: u32, fps: u32) -> (u64, u64) {
    let frame = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
    (frame, frame * u64::from(fps))
}

/// Whether `level` can carry `width`×`height` at `fps` (`false` for an unknown level).
pub fn carries(level: &str, width: u32, height: u32, fps: u32) -> bool {
    let (frame, second) = macroblocks(width, height, fps);
    LEVELS
        .iter()
        .find(|(name, _, _)| *name == level)
        .is_some_and(|(_, mbps, fs)| frame <= *fs && second <= *mbps)
}

/// The lowest level that carries `width`×`height` at `fps`, if any does.
pub fn lowest_for(width: u32, height: u32, fps: u32) -> Option<&'static str> {
    LEVELS
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|l| *l != "1b")
        .find(|l| carries(l, width, height, fps))
}
