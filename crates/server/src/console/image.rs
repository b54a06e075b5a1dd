//! The console's drawings as PNG, for Flowable's image endpoints: the same SVG, rendered in
//! Rust on a blocking thread and scaled down to stay within a bounded size, so that a model
//! whose geometry reaches far cannot make the server allocate without end.

use crate::error::ApiError;
use resvg::{tiny_skia, usvg};
use std::sync::{Arc, OnceLock};

/// The longest side of an image, in pixels.
const MAX_SIDE: f32 = 8192.0;
/// The most pixels of an image (64 MiB of colour before it is compressed).
const MAX_PIXELS: f32 = 16_777_216.0;

/// The sans-serif families the drawing's names are set in, the first installed one chosen.
const SANS: [&str; 5] = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica"];

/// The system's fonts, read once; `sans-serif` is mapped to an installed family.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_system_fonts();
            let families: Vec<String> =
                db.faces().flat_map(|face| face.families.iter().map(|(name, _)| name.clone())).collect();
            let sans = SANS
                .iter()
                .find(|family| families.iter().any(|f| f == *family))
                .map(|f| (*f).to_owned())
                .or_else(|| families.first().cloned());
            match sans {
                Some(family) => db.set_sans_serif_family(family),
                None => tracing::warn!("no fonts are installed: PNG diagrams are drawn without their names"),
            }
            Arc::new(db)
        })
        .clone()
}

/// Images drawn at once: each holds up to 64 MiB of pixels, so requests past these wait their
/// turn instead of each taking a blocking thread and its memory.
static DRAWING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `svg` as PNG on white: at its own size, or smaller where that passes the bounds.
pub(crate) async fn png(svg: String) -> Result<Vec<u8>, ApiError> {
    let stopped = |e: &dyn std::fmt::Display| {
        ApiError::with_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("drawing the image stopped: {e}"))
    };
    let _turn = DRAWING.acquire().await.map_err(|e| stopped(&e))?;
    tokio::task::spawn_blocking(move || render(&svg)).await.map_err(|e| stopped(&e))?
}

fn render(svg: &str) -> Result<Vec<u8>, ApiError> {
    let options = usvg::Options { fontdb: fonts(), ..usvg::Options::default() };
    let unfit = |why: String| ApiError::bad_request(format!("the model's diagram cannot be drawn as an image: {why}"));
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| unfit(e.to_string()))?;
    let (width, height) = (tree.size().width(), tree.size().height());
    let scale = 1f32.min(MAX_SIDE / width).min(MAX_SIDE / height).min((MAX_PIXELS / (width * height)).sqrt());
    let side = |length: f32| (length * scale).ceil().max(1.0) as u32;
    let mut pixmap = tiny_skia::Pixmap::new(side(width), side(height))
        .ok_or_else(|| unfit(format!("{width} × {height} is no size to draw at")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| {
        ApiError::with_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("encoding the image failed: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels(png: &[u8]) -> tiny_skia::Pixmap {
        tiny_skia::Pixmap::decode_png(png).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_drawing_is_rendered_at_its_size_with_its_shapes_and_names() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><style>.el{fill:#dc2626}text{font:12px sans-serif;fill:#000}</style>
            <rect class="el" x="10" y="10" width="50" height="50"/><text x="100" y="80">Review</text></svg>"#;
        let image = pixels(&render(svg).unwrap_or_else(|e| panic!("{e:?}")));
        assert_eq!((image.width(), image.height()), (200, 100));
        let at = |x: u32, y: u32| image.pixel(x, y).map(|p| (p.red(), p.green(), p.blue()));
        assert_eq!(at(30, 30), Some((0xdc, 0x26, 0x26)), "the stylesheet's fill is drawn");
        assert_eq!(at(5, 5), Some((255, 255, 255)), "on white");
        if fonts().is_empty() {
            eprintln!("SKIPPED: no fonts installed; names in images are not checked");
        } else {
            let dark = (95..150)
                .flat_map(|x| (65..85).map(move |y| (x, y)))
                .filter(|(x, y)| at(*x, *y).is_some_and(|p| p.0 < 128))
                .count();
            assert!(dark > 20, "the name is drawn: {dark} dark pixels");
        }
    }

    #[test]
    fn a_drawing_that_reaches_far_is_scaled_into_bounds_and_one_without_size_is_refused() {
        let far = r#"<svg xmlns="http://www.w3.org/2000/svg" width="1000000" height="500000"><rect width="1000000" height="500000" fill="red"/></svg>"#;
        let image = pixels(&render(far).unwrap_or_else(|e| panic!("{e:?}")));
        assert!(image.width() <= 8192 && image.height() <= 8192, "{}×{}", image.width(), image.height());
        assert!(f64::from(image.width()) * f64::from(image.height()) <= 16_777_216.0 * 1.01);
        let wrong = render(r#"<svg xmlns="http://www.w3.org/2000/svg" width="inf" height="0"/>"#);
        assert!(wrong.is_err(), "a drawing without a size is a client's model, refused");
    }
}
