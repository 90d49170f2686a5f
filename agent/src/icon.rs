//! The tray icon, drawn at start-up (no image files to load): a rounded badge in the state's
//! colour with a white key. Also written as PNG-free RGBA for `tray-icon`.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Look {
    LoggedOut,
    Fresh,
    Attention,
    Error,
}

impl Look {
    fn colour(self) -> [u8; 3] {
        match self {
            Look::LoggedOut => [0x8a, 0x8f, 0x98],
            Look::Fresh => [0x2e, 0x9d, 0x57],
            Look::Attention => [0xe0, 0x9a, 0x10],
            Look::Error => [0xd6, 0x45, 0x41],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Look::LoggedOut => "logged out",
            Look::Fresh => "fresh",
            Look::Attention => "needs attention",
            Look::Error => "error",
        }
    }
}

fn dist_to_segment(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let (wx, wy) = (p.0 - a.0, p.1 - a.1);
    let t = ((wx * vx + wy * vy) / (vx * vx + vy * vy)).clamp(0.0, 1.0);
    let (dx, dy) = (p.0 - (a.0 + t * vx), p.1 - (a.1 + t * vy));
    (dx * dx + dy * dy).sqrt()
}

/// RGBA pixels, `size`×`size`, antialiased by 4×4 supersampling.
pub fn rgba(look: Look, size: u32) -> Vec<u8> {
    let s = size as f32;
    let [r, g, b] = look.colour();
    let mut out = vec![0u8; (size * size * 4) as usize];
    let inside_badge = |x: f32, y: f32| {
        // rounded square with corner radius 22 % of the size
        let rad = s * 0.22;
        let (cx, cy) = (x.clamp(rad, s - rad), y.clamp(rad, s - rad));
        (x - cx).powi(2) + (y - cy).powi(2) <= rad * rad
    };
    let key = |x: f32, y: f32| {
        let u = s / 32.0;
        // ring
        let (cx, cy) = (11.0 * u, 16.0 * u);
        let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
        let ring = (d - 5.0 * u).abs() <= 1.9 * u;
        // shaft and teeth
        let shaft = dist_to_segment((x, y), (16.0 * u, 16.0 * u), (26.5 * u, 16.0 * u)) <= 1.9 * u;
        let t1 = dist_to_segment((x, y), (22.0 * u, 16.0 * u), (22.0 * u, 21.0 * u)) <= 1.6 * u;
        let t2 = dist_to_segment((x, y), (26.0 * u, 16.0 * u), (26.0 * u, 20.0 * u)) <= 1.6 * u;
        ring || shaft || t1 || t2
    };
    for py in 0..size {
        for px in 0..size {
            let (mut badge, mut white) = (0u32, 0u32);
            for sy in 0..4 {
                for sx in 0..4 {
                    let x = px as f32 + (sx as f32 + 0.5) / 4.0;
                    let y = py as f32 + (sy as f32 + 0.5) / 4.0;
                    if inside_badge(x, y) {
                        badge += 1;
                        if key(x, y) {
                            white += 1;
                        }
                    }
                }
            }
            let i = ((py * size + px) * 4) as usize;
            let w = white as f32 / badge.max(1) as f32;
            let mix = |c: u8| (c as f32 * (1.0 - w) + 255.0 * w).round() as u8;
            out[i] = mix(r);
            out[i + 1] = mix(g);
            out[i + 2] = mix(b);
            out[i + 3] = (badge * 255 / 16) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_differ_and_corners_are_transparent() {
        let a = rgba(Look::Fresh, 32);
        let b = rgba(Look::Error, 32);
        assert_eq!(a.len(), 32 * 32 * 4);
        assert_ne!(a, b);
        assert_eq!(a[3], 0, "corner transparent");
        let centre = ((16 * 32 + 3) * 4) as usize;
        assert_eq!(a[centre + 3], 255);
    }
}
