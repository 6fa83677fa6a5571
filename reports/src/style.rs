//! Fixed colors and figure geometry, shared by every figure so that a protocol, an outcome or a
//! fault looks the same everywhere.

use plotters::style::RGBColor;

/// `ok` outcomes: green.
pub const OK: RGBColor = RGBColor(0x2e, 0x8b, 0x57);
/// `fail` outcomes: red.
pub const FAIL: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// `fail` outcomes whose cas/create precondition was false (a definite answer): light red.
pub const FAIL_PRE: RGBColor = RGBColor(0xf1, 0x9c, 0x9c);
/// `info` outcomes (unknown): amber.
pub const INFO: RGBColor = RGBColor(0xe6, 0x9f, 0x00);
/// Fault windows (drawn at low opacity).
pub const FAULT: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// The warm-up span (drawn at low opacity).
pub const WARMUP: RGBColor = RGBColor(0x80, 0x80, 0x80);
/// Text and axes.
pub const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
/// A cell or span without data.
pub const NO_DATA: RGBColor = RGBColor(0xe8, 0xe8, 0xe8);

/// The font family of every figure (no font files: the browser picks its sans-serif).
pub const FONT: &str = "sans-serif";

/// Width of every figure, in px.
pub const WIDTH: u32 = 1100;
/// Width of the y-label area of time-axis figures, so that stacked figures line up.
pub const Y_LABEL_AREA: u32 = 90;
/// Right margin of time-axis figures.
pub const RIGHT_MARGIN: u32 = 24;

/// The color of each protocol, fixed by name; unknown names get a stable color from a fallback
/// palette (by a hash of the name). Green, red and amber are kept for ok/fail/info.
pub fn protocol_color(name: &str) -> RGBColor {
    match name {
        "single" => RGBColor(0x4d, 0x4d, 0x4d),
        "ensemble" => RGBColor(0x1f, 0x77, 0xb4),
        "raft" => RGBColor(0x94, 0x67, 0xbd),
        "openraft" => RGBColor(0x8c, 0x56, 0x4b),
        "eventual" => RGBColor(0x17, 0xbe, 0xcf),
        other => {
            const FALLBACK: [RGBColor; 6] = [
                RGBColor(0xe3, 0x77, 0xc2),
                RGBColor(0xbc, 0xbd, 0x22),
                RGBColor(0x39, 0x3b, 0x79),
                RGBColor(0x63, 0x79, 0x39),
                RGBColor(0x84, 0x3c, 0x39),
                RGBColor(0x7b, 0x41, 0x73),
            ];
            // FNV-1a: stable across runs and platforms.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in other.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            FALLBACK[(h % FALLBACK.len() as u64) as usize]
        }
    }
}

/// The color of node `i` (leaders in timelines): a palette without the outcome colors.
pub fn node_color(i: usize) -> RGBColor {
    const P: [RGBColor; 8] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x17, 0xbe, 0xcf),
        RGBColor(0xbc, 0xbd, 0x22),
        RGBColor(0x39, 0x3b, 0x79),
        RGBColor(0x7f, 0x7f, 0x7f),
    ];
    P[i % P.len()]
}

/// A categorical palette for things without a fixed color (op types, message kinds).
pub fn category_color(i: usize) -> RGBColor {
    const P: [RGBColor; 10] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x17, 0xbe, 0xcf),
        RGBColor(0xbc, 0xbd, 0x22),
        RGBColor(0x7f, 0x7f, 0x7f),
        RGBColor(0xd6, 0x27, 0x28),
    ];
    P[i % P.len()]
}

/// The color of an op type in per-run figures.
pub fn op_color(f: &str) -> RGBColor {
    match f {
        "all" => INK,
        "read" => RGBColor(0x1f, 0x77, 0xb4),
        "write" => RGBColor(0x94, 0x67, 0xbd),
        "cas" => RGBColor(0xff, 0x7f, 0x0e),
        "create" => RGBColor(0x17, 0xbe, 0xcf),
        "delete" => RGBColor(0x8c, 0x56, 0x4b),
        _ => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// Availability (share of ok ops) in 0..=1 → red (0) through yellow (0.5) to green (1).
pub fn share_color(share: f64) -> RGBColor {
    let s = if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (a, b, t) = if s < 0.5 {
        ((0xd7, 0x30, 0x27), (0xfe, 0xe0, 0x8b), s * 2.0)
    } else {
        ((0xfe, 0xe0, 0x8b), (0x1a, 0x98, 0x50), (s - 0.5) * 2.0)
    };
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// `#rrggbb`, for HTML.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_colors_are_distinct_and_stable() {
        let names = ["single", "ensemble", "raft", "openraft", "eventual"];
        let mut seen = std::collections::BTreeSet::new();
        for n in names {
            assert!(seen.insert(hex(protocol_color(n))), "{n}");
            assert_ne!(hex(protocol_color(n)), hex(OK));
            assert_ne!(hex(protocol_color(n)), hex(FAIL));
            assert_ne!(hex(protocol_color(n)), hex(INFO));
        }
        assert_eq!(hex(protocol_color("zab")), hex(protocol_color("zab")));
        assert_eq!(hex(share_color(0.0)), "#d73027");
        assert_eq!(hex(share_color(1.0)), "#1a9850");
    }
}
