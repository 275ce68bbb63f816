//! The chart's SVG as a PNG: resvg renders it with DejaVu Sans built into the binary
//! (`assets/fonts`, its licence beside it), so a machine without fonts or fontconfig gets the
//! same picture, text included.

use std::sync::Arc;

use anyhow::Context;
use resvg::{tiny_skia, usvg};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Renders `svg` to PNG bytes.
pub fn render(svg: &str) -> anyhow::Result<Vec<u8>> {
    let mut fonts = usvg::fontdb::Database::new();
    fonts.load_font_data(FONT.to_vec());
    // The SVG asks for the generic `sans-serif`, which fontdb maps to Arial by default.
    fonts.set_sans_serif_family("DejaVu Sans");
    anyhow::ensure!(!fonts.is_empty(), "the built-in font did not load");
    let options = usvg::Options {
        fontdb: Arc::new(fonts),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).context("reading the chart's SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).context("the chart has no size")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().context("encoding the PNG")
}
