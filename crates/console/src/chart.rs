//! Charts as SVG written on the server: no script, and testable as text.

use maud::{Markup, html};

/// A bar chart of `values` (oldest first), `width`×`height` pixels, with an accessible title.
pub fn bars(title: &str, values: &[u64], width: u32, height: u32) -> Markup {
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let count = u32::try_from(values.len()).unwrap_or(u32::MAX).max(1);
    let slot = f64::from(width) / f64::from(count);
    let bar = format!("{:.1}", (slot * 0.8).max(1.0));
    let view_box = format!("0 0 {width} {height}");
    html! {
        svg.chart role="img" viewBox=(view_box) width=(width) height=(height) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            line x1="0" y1=(height) x2=(width) y2=(height) class="axis" {}
            @for (index, value) in values.iter().enumerate() {
                @let scaled = (*value as f64 / max as f64) * f64::from(height - 2);
                rect x=(format!("{:.1}", slot * index as f64)) y=(format!("{:.1}", f64::from(height) - scaled))
                    width=(bar) height=(format!("{scaled:.1}")) data-value=(value) {
                    title { (value) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_to_the_largest_value() {
        let svg = bars("Claims <per> minute", &[0, 5, 10], 300, 100).into_string();
        assert!(svg.contains("<title>Claims &lt;per&gt; minute</title>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains(r#"y="2.0" width="80.0" height="98.0" data-value="10""#), "{svg}");
        assert!(svg.contains(r#"height="0.0" data-value="0""#));
    }

    #[test]
    fn an_empty_series_draws_an_axis_only() {
        let svg = bars("none", &[], 300, 100).into_string();
        assert!(!svg.contains("<rect"));
        assert!(svg.contains("class=\"axis\""));
    }
}
