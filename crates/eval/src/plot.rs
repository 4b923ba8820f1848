//! Line charts (axes, ticks, grid, error bars, legend, a built-in 5x7 font) rendered to PNG.
//!
//! No plotting crate: the canvas is plain RGB bytes, encoded by [`super::png`].

use super::png::encode_rgb;

/// One line of a chart: points (x, y) with an optional error bar half-height.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Name shown in the legend.
    pub name: String,
    /// Points as `(x, y, err)`; `err` is the error bar half-height (0 for no error bar).
    pub points: Vec<(f64, f64, f64)>,
}

/// A chart to draw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    /// Title drawn centred at the top.
    pub title: String,
    /// Label drawn below the x axis.
    pub x_label: String,
    /// Label drawn (horizontally) above the y axis.
    pub y_label: String,
    /// Whether the x axis uses a log10 scale (points with x <= 0 are then skipped).
    pub log_x: bool,
    /// The lines to draw, each in its own colour.
    pub series: Vec<Series>,
}

/// Renders the chart as PNG bytes, `width` x `height` pixels (e.g. 900 x 560): one panel
/// of [`render_panels_png`].
#[cfg(test)]
fn render_png(chart: &Chart, width: u32, height: u32) -> Vec<u8> {
    let mut cv = Canvas::new(width, height);
    let w = cv.w;
    draw_chart(&mut cv, chart, 0, w);
    encode_rgb(cv.width, cv.height, &cv.px)
}

/// Several charts side by side in one image (e.g. AUC and accuracy panels), each `panel_width` x `height`.
#[must_use]
pub fn render_panels_png(charts: &[Chart], panel_width: u32, height: u32) -> Vec<u8> {
    let n = u32::try_from(charts.len().max(1)).unwrap_or(u32::MAX);
    let mut cv = Canvas::new(panel_width.max(1).saturating_mul(n), height);
    let pw = i64::from(panel_width.max(1));
    for (i, chart) in (0i64..).zip(charts) {
        cv.clip = (i * pw, (i + 1) * pw);
        draw_chart(&mut cv, chart, i * pw, pw);
    }
    encode_rgb(cv.width, cv.height, &cv.px)
}

type Rgb = [u8; 3];
const BLACK: Rgb = [0, 0, 0];
const TEXT: Rgb = [25, 25, 25];
const GRID: Rgb = [226, 226, 226];
const FRAME: Rgb = [160, 160, 160];
/// Tableau-10 style palette of clearly distinguishable colours.
const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// 5x7 glyphs (plus an 8th row for descenders), packed one byte per row, top row in the most significant byte,
/// bit 4 = leftmost column. Characters not listed fall back to their uppercase glyph, then to a small box.
#[rustfmt::skip]
const FONT: &[(char, u64)] = &[
    ('0', 0x0E11_1315_1911_0E00), ('1', 0x040C_0404_0404_0E00), ('2', 0x0E11_0102_0408_1F00), ('3', 0x1F02_0402_0111_0E00),
    ('4', 0x0206_0A12_1F02_0200), ('5', 0x1F10_1E01_0111_0E00), ('6', 0x0608_101E_1111_0E00), ('7', 0x1F01_0204_0808_0800),
    ('8', 0x0E11_110E_1111_0E00), ('9', 0x0E11_110F_0102_0C00), ('A', 0x0E11_111F_1111_1100), ('B', 0x1E11_111E_1111_1E00),
    ('C', 0x0E11_1010_1011_0E00), ('D', 0x1C12_1111_1112_1C00), ('E', 0x1F10_101E_1010_1F00), ('F', 0x1F10_101E_1010_1000),
    ('G', 0x0E11_1017_1111_0F00), ('H', 0x1111_111F_1111_1100), ('I', 0x0E04_0404_0404_0E00), ('J', 0x0702_0202_0212_0C00),
    ('K', 0x1112_1418_1412_1100), ('L', 0x1010_1010_1010_1F00), ('M', 0x111B_1515_1111_1100), ('N', 0x1111_1915_1311_1100),
    ('O', 0x0E11_1111_1111_0E00), ('P', 0x1E11_111E_1010_1000), ('Q', 0x0E11_1111_1512_0D00), ('R', 0x1E11_111E_1412_1100),
    ('S', 0x0F10_100E_0101_1E00), ('T', 0x1F04_0404_0404_0400), ('U', 0x1111_1111_1111_0E00), ('V', 0x1111_1111_110A_0400),
    ('W', 0x1111_1115_1515_0A00), ('X', 0x1111_0A04_0A11_1100), ('Y', 0x1111_0A04_0404_0400), ('Z', 0x1F01_0204_0810_1F00),
    ('a', 0x0000_0E01_0F11_0F00), ('b', 0x1010_1619_1111_1E00), ('c', 0x0000_0E10_1011_0E00), ('d', 0x0101_0D13_1111_0F00),
    ('e', 0x0000_0E11_1F10_0E00), ('f', 0x0609_081C_0808_0800), ('g', 0x0000_0F11_110F_010E), ('h', 0x1010_1619_1111_1100),
    ('i', 0x0400_0C04_0404_0E00), ('j', 0x0200_0602_0202_120C), ('k', 0x1010_1214_1814_1200), ('l', 0x0C04_0404_0404_0E00),
    ('m', 0x0000_1A15_1515_1500), ('n', 0x0000_1619_1111_1100), ('o', 0x0000_0E11_1111_0E00), ('p', 0x0000_1E11_111E_1010),
    ('q', 0x0000_0F11_110F_0101), ('r', 0x0000_1619_1010_1000), ('s', 0x0000_0E10_0E01_1E00), ('t', 0x0808_1C08_0809_0600),
    ('u', 0x0000_1111_1113_0D00), ('v', 0x0000_1111_110A_0400), ('w', 0x0000_1111_1515_0A00), ('x', 0x0000_110A_040A_1100),
    ('y', 0x0000_1111_110F_010E), ('z', 0x0000_1F02_0408_1F00), (' ', 0x0000_0000_0000_0000), ('.', 0x0000_0000_000C_0C00),
    (',', 0x0000_0000_000C_0408), ('-', 0x0000_001F_0000_0000), ('+', 0x0004_041F_0404_0000), ('(', 0x0204_0808_0804_0200),
    (')', 0x0804_0202_0204_0800), (':', 0x000C_0C00_0C0C_0000), ('/', 0x0101_0204_0810_1000), ('%', 0x1819_0204_0813_0300),
    ('=', 0x0000_1F00_1F00_0000), ('_', 0x0000_0000_0000_1F00), ('#', 0x0A0A_1F0A_1F0A_0A00), ('>', 0x0804_0201_0204_0800),
    ('<', 0x0204_0810_0804_0200), ('!', 0x0404_0404_0400_0400), ('?', 0x0E11_0102_0400_0400), ('\'', 0x0404_0800_0000_0000),
    ('*', 0x0004_150E_1504_0000), ('[', 0x0E08_0808_0808_0E00), (']', 0x0E02_0202_0202_0E00), (';', 0x000C_0C00_0C04_0800),
    ('|', 0x0404_0404_0404_0400),
];

/// Glyph bitmap for `c`; unknown characters become a small box.
fn glyph(c: char) -> [u8; 8] {
    let c = if c == '⊕' { '+' } else { c };
    FONT.iter()
        .find(|g| g.0 == c)
        .or_else(|| FONT.iter().find(|g| g.0 == c.to_ascii_uppercase()))
        .map_or([0, 0x1F, 0x11, 0x11, 0x11, 0x1F, 0, 0], |g| g.1.to_be_bytes())
}

/// Pixel width of `s` drawn at `scale` (6 px advance per glyph, no trailing gap).
fn text_w(s: &str, scale: i64) -> i64 {
    (i64::try_from(s.chars().count()).unwrap_or(0) * 6 * scale - scale).max(0)
}

/// Truncates `s` (with a trailing '.') so it fits into `max_w` pixels at `scale`.
fn fit(s: &str, scale: i64, max_w: i64) -> String {
    if text_w(s, scale) <= max_w {
        return s.to_string();
    }
    let n = usize::try_from((max_w + scale) / (6 * scale)).unwrap_or(0);
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('.');
    t
}

/// Rounds a pixel coordinate, mapping non-finite values to 0 and clamping huge ones.
#[allow(clippy::cast_possible_truncation)]
fn px(v: f64) -> i64 {
    if v.is_finite() {
        v.round().clamp(-1e7, 1e7) as i64
    } else {
        0
    }
}

/// Pixel count as float.
#[allow(clippy::cast_precision_loss)]
fn fl(v: i64) -> f64 {
    v as f64
}

/// An RGB raster with a horizontal clip range (used to keep panels apart).
struct Canvas {
    width: u32,
    height: u32,
    w: i64,
    h: i64,
    clip: (i64, i64),
    px: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Self {
        let (width, height) = (width.max(1), height.max(1));
        let (w, h) = (i64::from(width), i64::from(height));
        let len = usize::try_from(width).unwrap_or(0) * usize::try_from(height).unwrap_or(0) * 3;
        Canvas {
            width,
            height,
            w,
            h,
            clip: (0, w),
            px: vec![255; len],
        }
    }

    /// Fills the rectangle `[x, x + w) x [y, y + h)`, clipped to the canvas.
    fn rect(&mut self, x: i64, y: i64, width: i64, height: i64, c: Rgb) {
        let (x0, x1) = (x.max(self.clip.0), (x + width).min(self.clip.1));
        for yy in y.max(0)..(y + height).min(self.h) {
            for xx in x0..x1 {
                if let Ok(i) = usize::try_from((yy * self.w + xx) * 3) {
                    self.px[i..i + 3].copy_from_slice(&c);
                }
            }
        }
    }

    /// Bresenham line stamped with a `t` x `t` square.
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), t: i64, c: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.rect(x - t / 2, y - t / 2, t, t, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws `s` with its top-left corner at (x, y), each font pixel `scale` x `scale`.
    fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb) {
        for (k, ch) in (0i64..).zip(s.chars()) {
            for (r, bits) in (0i64..).zip(glyph(ch)) {
                for col in 0..5i64 {
                    if bits & (0x10 >> col) != 0 {
                        self.rect(x + (k * 6 + col) * scale, y + r * scale, scale, scale, c);
                    }
                }
            }
        }
    }
}

/// Finite points of each series (x > 0 on log axes), sorted by x, with `|err|` (0 if not finite).
fn clean(chart: &Chart) -> Vec<Vec<(f64, f64, f64)>> {
    let ok = |&&(x, y, _): &&(f64, f64, f64)| x.is_finite() && y.is_finite() && (!chart.log_x || x > 0.0);
    chart
        .series
        .iter()
        .map(|s| {
            let mut p: Vec<_> = s
                .points
                .iter()
                .filter(ok)
                .map(|&(x, y, e)| (x, y, if e.is_finite() { e.abs() } else { 0.0 }))
                .collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            p
        })
        .collect()
}

/// Axis range for data in `[lo, hi]`: widened around a single value and padded by 6 % on each side.
fn axis_range(lo: f64, hi: f64, zero_pad: f64) -> (f64, f64) {
    let (lo, hi) = if lo.partial_cmp(&hi).is_none_or(std::cmp::Ordering::is_gt) {
        (0.0, 1.0)
    } else if hi - lo > 1e-12 * lo.abs().max(hi.abs()) {
        (lo, hi)
    } else {
        let d = if lo.abs() > 1e-12 { lo.abs() * 0.1 } else { zero_pad };
        (lo - d, hi + d)
    };
    let pad = (hi - lo) * 0.06;
    (lo - pad, hi + pad)
}

/// Five or six "nice" (1, 2, 2.5, 5 x 10^k) ticks covering `range`, and their step. Takes the smallest step with at
/// most six ticks inside the range; if that gives fewer than five, `range` is widened to the nearest outer ticks.
fn nice_ticks(range: &mut (f64, f64)) -> (Vec<f64>, f64) {
    let (lo, hi) = *range;
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (Vec::new(), 1.0);
    }
    let mag = 10f64.powf((span / 6.0).log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0, 20.0].map(|m| m * mag) {
        let (mut first, mut last) = ((lo / step).ceil(), (hi / step).floor());
        if last - first <= 5.0 {
            for _ in 0..4 {
                if last - first >= 4.0 {
                    break;
                }
                if lo - (first - 1.0) * step <= (last + 1.0) * step - hi {
                    first -= 1.0
                } else {
                    last += 1.0
                }
            }
            *range = (lo.min(first * step), hi.max(last * step));
            let ticks = (0..6u8)
                .map(|i| first + f64::from(i))
                .take_while(|&k| k <= last)
                .map(|k| if k == 0.0 { 0.0 } else { k * step })
                .collect();
            return (ticks, step);
        }
    }
    (Vec::new(), 1.0)
}

/// Number of decimals needed to print multiples of `step` exactly.
fn decimals(step: f64) -> usize {
    (0..10u8)
        .find(|&d| {
            let s = step * 10f64.powi(i32::from(d));
            (s - s.round()).abs() < 1e-6 * s.abs().max(1.0)
        })
        .map_or(10, usize::from)
}

/// Compact label for a data x value (integers without decimals, others with up to 4 significant decimals).
fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 1e-3 {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
}

/// Draws one chart into the horizontal band `[ox, ox + width)` of the canvas.
#[allow(clippy::too_many_lines)]
fn draw_chart(cv: &mut Canvas, chart: &Chart, ox: i64, width: i64) {
    let height = cv.h;
    let sc: i64 = if width >= 500 && height >= 300 { 2 } else { 1 };
    let th = 7 * sc;
    let data = clean(chart);
    let all = || data.iter().flatten();

    // Ranges and ticks.
    let mut yr = axis_range(
        all().map(|p| p.1 - p.2).fold(f64::INFINITY, f64::min),
        all().map(|p| p.1 + p.2).fold(f64::NEG_INFINITY, f64::max),
        1.0,
    );
    let tx = |x: f64| if chart.log_x { x.log10() } else { x };
    let mut xr = axis_range(
        all().map(|p| tx(p.0)).fold(f64::INFINITY, f64::min),
        all().map(|p| tx(p.0)).fold(f64::NEG_INFINITY, f64::max),
        if chart.log_x { 0.5 } else { 1.0 },
    );
    let (yt, ystep) = nice_ticks(&mut yr);
    let ylabels: Vec<(f64, String)> = yt.iter().map(|&v| (v, format!("{v:.*}", decimals(ystep)))).collect();
    let xlabels: Vec<(f64, String)> = if chart.log_x {
        let mut xs: Vec<f64> = all().map(|p| p.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        xs.into_iter().map(|x| (x, fmt_num(x))).collect()
    } else {
        let (xt, xstep) = nice_ticks(&mut xr);
        xt.into_iter()
            .map(|v| (v, format!("{v:.*}", decimals(xstep))))
            .collect()
    };

    let ((xlo, xhi), (ylo, yhi)) = (xr, yr);

    // Legend size: shrink the font, then truncate names, so it takes at most ~30 % of the width.
    let max_leg = width * 3 / 10;
    let name_w = |s: i64| chart.series.iter().map(|x| text_w(&x.name, s)).max().unwrap_or(0);
    let ls = if name_w(sc) + 52 > max_leg { 1 } else { sc };
    let leg_w = if chart.series.is_empty() {
        0
    } else {
        (name_w(ls) + 52).min(max_leg)
    };

    // Layout.
    let title_y = 10;
    let ylabel_y = title_y + th + 10;
    let top = ylabel_y + th + 12;
    let xlabel_y = height - 8 - th;
    let bottom = (xlabel_y - 10 - th - 10).max(top + 1);
    let ytw = ylabels.iter().map(|l| text_w(&l.1, sc)).max().unwrap_or(0);
    let left = ox + 10 + ytw + 12;
    let right = (ox + width - 15 - if leg_w > 0 { leg_w + 15 } else { 0 }).max(left + 1);
    let (pw, ph) = (right - left, bottom - top);
    let mx = |x: f64| (left + px((tx(x) - xlo) / (xhi - xlo) * fl(pw))).clamp(left - 20, right + 20);
    let my = |y: f64| (bottom - px((y - ylo) / (yhi - ylo) * fl(ph))).clamp(top - 20, bottom + 20);

    // Title and axis labels.
    let title = fit(&chart.title, sc, width - 20);
    cv.text(ox + (width - text_w(&title, sc)) / 2, title_y, &title, sc, TEXT);
    cv.text(ox + 10, ylabel_y, &fit(&chart.y_label, sc, width - 20), sc, TEXT);
    let xl = fit(&chart.x_label, sc, width - 20);
    cv.text((left + right - text_w(&xl, sc)) / 2, xlabel_y, &xl, sc, TEXT);

    // Grid, frame, ticks and tick labels.
    for (v, s) in &ylabels {
        let y = my(*v);
        cv.rect(left + 1, y, pw - 1, 1, GRID);
        cv.rect(left - 5, y, 5, 1, BLACK);
        cv.text(left - 8 - text_w(s, sc), y - th / 2, s, sc, TEXT);
    }
    cv.rect(left, top, pw + 1, 1, FRAME);
    cv.rect(right, top, 1, ph + 1, FRAME);
    cv.rect(left, top, 1, ph + 1, BLACK);
    cv.rect(left, bottom, pw + 1, 1, BLACK);
    let mut last_end = i64::MIN;
    for (v, s) in &xlabels {
        let x = mx(*v);
        cv.rect(x, bottom + 1, 1, 5, BLACK);
        let tw = text_w(s, sc);
        let start = (x - tw / 2).clamp(ox + 2, (ox + width - tw - 2).max(ox + 2));
        if start > last_end.saturating_add(3 * sc) {
            cv.text(start, bottom + 10, s, sc, TEXT);
            last_end = start + tw;
        }
    }

    // Series: error bars, then 2 px lines, then 5x5 markers.
    for (i, pts) in data.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        for &(x, y, e) in pts.iter().filter(|p| p.2 > 0.0) {
            let (xp, a, b) = (mx(x), my(y + e), my(y - e));
            cv.rect(xp, a, 1, b - a + 1, c);
            cv.rect(xp - 4, a, 9, 1, c);
            cv.rect(xp - 4, b, 9, 1, c);
        }
        for (p, q) in pts.iter().zip(pts.iter().skip(1)) {
            cv.line((mx(p.0), my(p.1)), (mx(q.0), my(q.1)), 2, c);
        }
        for p in pts {
            cv.rect(mx(p.0) - 2, my(p.1) - 2, 5, 5, c);
        }
    }

    // Legend to the right of the plot area.
    if leg_w > 0 {
        let (bx, row) = (right + 15, 7 * ls + 10);
        let n = i64::try_from(chart.series.len()).unwrap_or(0);
        let bh = n * row + 8;
        cv.rect(bx, top, leg_w, bh, FRAME);
        cv.rect(bx + 1, top + 1, leg_w - 2, bh - 2, [255; 3]);
        for ((i, s), r) in chart.series.iter().enumerate().zip(0i64..) {
            let c = PALETTE[i % PALETTE.len()];
            let y = top + 9 + r * row;
            let cy = y + 7 * ls / 2;
            cv.line((bx + 10, cy), (bx + 34, cy), 2, c);
            cv.rect(bx + 20, cy - 2, 5, 5, c);
            cv.text(bx + 42, y, &fit(&s.name, ls, leg_w - 52), ls, TEXT);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::png::testing::{decode, unzlib};
    use super::*;

    fn series(name: &str, points: &[(f64, f64, f64)]) -> Series {
        Series {
            name: name.to_string(),
            points: points.to_vec(),
        }
    }

    fn sample() -> Chart {
        let xs = [100.0, 500.0, 1000.0, 29000.0];
        let mk =
            |name: &str, ys: [f64; 4]| series(name, &xs.iter().zip(ys).map(|(&x, y)| (x, y, 0.01)).collect::<Vec<_>>());
        Chart {
            title: "AUC vs label budget".into(),
            x_label: "labelled samples (log scale)".into(),
            y_label: "AUC".into(),
            log_x: true,
            series: vec![
                mk("raw", [0.71, 0.78, 0.81, 0.88]),
                mk("vime", [0.74, 0.80, 0.82, 0.87]),
                mk("raw + vime", [0.75, 0.81, 0.84, 0.89]),
                mk("scarf", [0.72, 0.77, 0.80, 0.86]),
            ],
        }
    }

    #[test]
    fn png_layout_and_dimensions() {
        let png = render_png(&sample(), 900, 560);
        let (w, h, px) = decode(&png);
        assert_eq!((w, h), (900, 560));
        assert_eq!(px.len(), 900 * 560 * 3);
        assert_eq!(&px[..3], &[255, 255, 255]);
        for c in &PALETTE[..4] {
            assert!(px.chunks(3).any(|p| p == c), "series colour {c:?} missing");
        }
    }

    #[test]
    fn panels() {
        let mut acc = sample();
        acc.title = "Accuracy".into();
        acc.log_x = false;
        let (w, h, _) = decode(&render_panels_png(&[sample(), acc], 640, 480));
        assert_eq!((w, h), (1280, 480));
        assert_eq!(decode(&render_panels_png(&[], 300, 200)).0, 300);
    }

    #[test]
    fn edge_cases_do_not_panic() {
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        let cases: [&[(f64, f64, f64)]; 8] = [
            &[],
            &[(1.0, 0.5, 0.0), (2.0, 0.5, 0.0), (3.0, 0.5, 0.0)],
            &[(1.0, 0.0, 0.0), (2.0, 0.0, 0.0)],
            &[(nan, 1.0, 0.0), (1.0, nan, 0.1), (2.0, 3.0, nan), (3.0, 2.0, 0.5)],
            &[(5.0, 1.0, 0.1), (5.0, 2.0, 0.0)],
            &[(-1.0, 1.0, 0.0), (0.0, 2.0, 0.0)],
            &[(-1.0, 1.0, 0.0), (0.0, 2.0, 0.0), (10.0, 3.0, 0.0)],
            &[(1.0, inf, 0.0), (2.0, 1e308, 1e308), (3.0, -1e308, -inf)],
        ];
        let mut charts = vec![
            Chart::default(),
            Chart {
                log_x: true,
                ..Chart::default()
            },
        ];
        for (pts, log_x) in cases.iter().flat_map(|p| [(p, false), (p, true)]) {
            charts.push(Chart {
                series: vec![series("s", pts)],
                log_x,
                ..sample()
            });
        }
        let names = (0..25).map(|i| series(&"x".repeat(i * 3), &[(1.0, f64::from(u8::try_from(i).unwrap()), 0.0)]));
        charts.push(Chart {
            title: "ünïcödé ⊕ ~{}".repeat(20),
            series: names.collect(),
            ..sample()
        });
        for chart in &charts {
            for (w, h) in [(500, 300), (120, 90), (1, 1), (0, 0)] {
                assert_eq!(decode(&render_png(chart, w, h)).0, w.max(1));
            }
            decode(&render_panels_png(&[chart.clone(), chart.clone()], 300, 200));
        }
    }

    #[test]
    fn pixels_survive_filters_and_compression() {
        let mut acc = sample();
        acc.log_x = false;
        let mut cv = Canvas::new(1200, 400);
        for (i, chart) in (0i64..).zip([sample(), acc]) {
            cv.clip = (i * 600, (i + 1) * 600);
            draw_chart(&mut cv, &chart, i * 600, 600);
        }
        let png = encode_rgb(cv.width, cv.height, &cv.px);
        assert_eq!(decode(&png), (1200, 400, cv.px.clone()));
        let raw = unzlib(&png[41..png.len() - 16]);
        assert!(
            raw.chunks(1 + 1200 * 3).all(|r| r[0] == 2),
            "Up filter expected on every row"
        );
    }

    #[test]
    fn compressed_size_and_determinism() {
        let charts: Vec<Chart> = (0..4)
            .map(|i| Chart {
                log_x: i != 3,
                ..sample()
            })
            .collect();
        let png = render_panels_png(&charts, 900, 560);
        assert!(png.len() < 150_000, "{} bytes", png.len());
        assert_eq!(png, render_panels_png(&charts, 900, 560));
        assert_eq!(decode(&png).0, 3600);
        assert!(render_png(&sample(), 900, 560).len() < 40_000);
    }

    #[test]
    fn ticks_and_labels() {
        let mut r = (0.69, 0.91);
        let (t, step) = nice_ticks(&mut r);
        assert_eq!((t.len(), r), (5, (0.69, 0.91)));
        assert!((step - 0.05).abs() < 1e-12);
        for (lo, hi) in [
            (-151.0, 151.0),
            (0.0, 1.0),
            (-3e-7, 2e-5),
            (1e9, 1.000_001e9),
            (-0.06, 1.06),
            (7.0, 31.0),
        ] {
            let mut r = (lo, hi);
            let (t, _) = nice_ticks(&mut r);
            assert!((5..=6).contains(&t.len()) && r.0 <= lo && r.1 >= hi, "{lo} {hi} {t:?}");
            assert!(t.iter().all(|v| (r.0..=r.1).contains(v)), "{lo} {hi} {t:?} {r:?}");
        }
        assert_eq!(decimals(step), 2);
        assert_eq!(decimals(0.25), 2);
        assert_eq!(decimals(10.0), 0);
        assert_eq!(fmt_num(29000.0), "29000");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(glyph('\u{e9}'), glyph('\u{c9}'));
        assert_eq!(glyph('⊕'), glyph('+'));
        assert_eq!(glyph('~'), [0, 0x1F, 0x11, 0x11, 0x11, 0x1F, 0, 0]);
        assert_eq!(glyph('A'), [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11, 0]);
        assert_eq!(fit("abcdefgh", 1, 23), "abc.");
    }
}
