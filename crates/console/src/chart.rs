//! Charts as SVG written on the server: no script, and testable as text.

use chrono::{DateTime, Timelike, Utc};
use maud::{Markup, html};

use crate::layout::Zone;

/// Room around the plot for the axes' ticks and titles, in pixels.
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 48.0;
/// Minutes between two labelled ticks of the time axis.
const TICK_MINUTES: u32 = 15;
/// The narrowest and the shortest a bar is drawn, so that one claim among many still shows.
const MIN_BAR_WIDTH: f64 = 4.0;
const MIN_BAR_HEIGHT: f64 = 2.0;

/// A bar chart of claims per minute, `width`×`height` pixels, with an accessible `title`:
/// `minutes` holds the start of each minute and its count, oldest first. The time axis is
/// labelled every quarter hour on `zone`'s clock; the count axis at 0, half-way and the most.
pub fn per_minute(title: &str, minutes: &[(DateTime<Utc>, u64)], zone: Zone, width: u32, height: u32) -> Markup {
    let (plot_width, plot_height) = (f64::from(width) - LEFT - RIGHT, f64::from(height) - TOP - BOTTOM);
    let base = TOP + plot_height;
    let most = minutes.iter().map(|(_, count)| *count).max().unwrap_or(0);
    let top = most.max(1);
    let y = |count: u64| base - count as f64 / top as f64 * plot_height;
    let mut ticks = vec![0, top];
    if top >= 2 {
        ticks.insert(1, top / 2);
    }
    let slot = plot_width / minutes.len().max(1) as f64;
    let bar_width = (slot * 0.8).max(MIN_BAR_WIDTH);
    let zone_name = minutes.last().map_or_else(|| zone.abbreviation(Utc::now()), |(at, _)| zone.abbreviation(*at));
    let total: u64 = minutes.iter().map(|(_, count)| count).sum();
    let busiest = minutes.iter().filter(|(_, count)| *count == most && most > 0).map(|(at, _)| *at).next_back();
    let summary = match busiest {
        Some(at) => format!(
            "{total} claims in {} minutes; the most in one minute: {most}, at {} {zone_name}.",
            minutes.len(),
            clock(zone, at)
        ),
        None => format!("No claims in these {} minutes.", minutes.len()),
    };
    let view_box = format!("0 0 {width} {height}");
    html! {
        svg.chart role="img" viewBox=(view_box) width=(width) height=(height) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            desc { (summary) }
            g.y-axis {
                @for tick in &ticks {
                    line.grid x1=(px(LEFT)) y1=(px(y(*tick))) x2=(px(LEFT + plot_width)) y2=(px(y(*tick))) {}
                    line.tick x1=(px(LEFT - 5.0)) y1=(px(y(*tick))) x2=(px(LEFT)) y2=(px(y(*tick))) {}
                    text x=(px(LEFT - 8.0)) y=(px(y(*tick) + 4.0)) text-anchor="end" { (tick) }
                }
                line.axis x1=(px(LEFT)) y1=(px(TOP)) x2=(px(LEFT)) y2=(px(base)) {}
                text.axis-title transform=(format!("translate(14 {}) rotate(-90)", px(TOP + plot_height / 2.0))) text-anchor="middle" {
                    "Claims per minute"
                }
            }
            g.bars {
                @for (index, (at, count)) in minutes.iter().enumerate() {
                    @let height = if *count == 0 { 0.0 } else { (base - y(*count)).max(MIN_BAR_HEIGHT) };
                    rect x=(px(LEFT + slot * index as f64 + (slot - bar_width).max(0.0) / 2.0)) y=(px(base - height))
                        width=(px(bar_width)) height=(px(height)) data-value=(count) {
                        title { (clock(zone, *at)) " " (zone_name) ": " (count) @if *count == 1 { " claim" } @else { " claims" } }
                    }
                }
            }
            g.x-axis {
                line.axis x1=(px(LEFT)) y1=(px(base)) x2=(px(LEFT + plot_width)) y2=(px(base)) {}
                @for (index, (at, _)) in minutes.iter().enumerate() {
                    @if zone.local(*at).minute().is_multiple_of(TICK_MINUTES) {
                        @let x = LEFT + slot * index as f64;
                        line.tick x1=(px(x)) y1=(px(base)) x2=(px(x)) y2=(px(base + 5.0)) {}
                        text x=(px(x)) y=(px(base + 18.0)) text-anchor="middle" data-tick { (clock(zone, *at)) }
                    }
                }
                text.axis-title x=(px(LEFT + plot_width / 2.0)) y=(px(f64::from(height) - 8.0)) text-anchor="middle" {
                    "Time (" (zone_name) "), one bar per minute, the last one still counting"
                }
            }
        }
    }
}

/// `at` on `zone`'s clock, `HH:MM`.
fn clock(zone: Zone, at: DateTime<Utc>) -> String {
    zone.local(at).format("%H:%M").to_string()
}

/// A coordinate, to a tenth of a pixel.
fn px(value: f64) -> String {
    format!("{value:.1}")
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    /// The 60 minutes before 2026-12-07 11:01 UTC (20:01 in Seoul), with `counts` at the end.
    fn hour(counts: &[u64]) -> Vec<(DateTime<Utc>, u64)> {
        let last = DateTime::parse_from_rfc3339("2026-12-07T11:01:00Z").unwrap().with_timezone(&Utc);
        (0..60)
            .map(|index| {
                let from_end = 59 - index;
                let count = counts.len().checked_sub(1 + from_end).map_or(0, |at| counts[at]);
                (last - Duration::minutes(from_end as i64), count)
            })
            .collect()
    }

    #[test]
    fn bars_are_scaled_to_the_largest_value_between_labelled_axes() {
        let svg = per_minute("Claims <per> minute", &hour(&[0, 5, 10]), Zone::Utc, 720, 220).into_string();
        assert!(svg.contains("<title>Claims &lt;per&gt; minute</title>"));
        assert_eq!(svg.matches("<rect").count(), 60);
        // The plot is 158 px tall above y = 172: 10 reaches the top, 5 half-way, 0 nothing.
        assert!(svg.contains(r#"y="14.0" width="8.6" height="158.0" data-value="10""#), "{svg}");
        assert!(svg.contains(r#"y="93.0" width="8.6" height="79.0" data-value="5""#), "{svg}");
        assert!(svg.contains(r#"height="0.0" data-value="0""#));
        // The count axis: 0, 5 and 10, each at its height.
        for (label, y) in [("0", "176.0"), ("5", "97.0"), ("10", "18.0")] {
            assert!(svg.contains(&format!(r#"y="{y}" text-anchor="end">{label}</text>"#)), "{label}: {svg}");
        }
        // The time axis: every quarter hour of the last hour, and both axes named.
        let ticks: Vec<&str> = svg.split("data-tick>").skip(1).map(|rest| rest.split('<').next().unwrap()).collect();
        assert_eq!(ticks, ["10:15", "10:30", "10:45", "11:00"]);
        assert!(svg.contains(">Claims per minute</text>") && svg.contains(">Time (UTC), one bar per minute"));
        assert!(svg.contains("<desc>15 claims in 60 minutes; the most in one minute: 10, at 11:01 UTC.</desc>"));
    }

    #[test]
    fn the_time_axis_follows_the_zone_and_a_lone_claim_still_shows() {
        let seoul = Zone::of_event("Asia/Seoul");
        let svg = per_minute("t", &hour(&[1]), seoul, 720, 220).into_string();
        let ticks: Vec<&str> = svg.split("data-tick>").skip(1).map(|rest| rest.split('<').next().unwrap()).collect();
        assert_eq!(ticks, ["19:15", "19:30", "19:45", "20:00"]);
        assert!(svg.contains(">Time (KST), one bar per minute"));
        // One claim, in the last minute: a full-height bar at the right edge, on a 0–1 scale.
        assert!(svg.contains(r#"<text x="48.0" y="18.0" text-anchor="end">1</text>"#), "{svg}");
        assert!(!svg.contains(">0.5<"), "no half claims");
        assert!(svg.contains(r#"<title>20:01 KST: 1 claim</title>"#));
    }

    #[test]
    fn bars_have_a_visible_size_however_many_and_however_small() {
        let mut minutes = hour(&[1000, 1]);
        minutes.extend(hour(&[]).into_iter().chain(hour(&[])).chain(hour(&[])));
        let svg = per_minute("t", &minutes, Zone::Utc, 720, 220).into_string();
        assert!(svg.contains(r#"width="4.0" height="2.0" data-value="1""#), "{svg}");
    }

    #[test]
    fn an_empty_series_draws_labelled_axes_only() {
        let svg = per_minute("none", &[], Zone::Utc, 720, 220).into_string();
        assert!(!svg.contains("<rect"));
        assert!(svg.contains("class=\"axis\"") && svg.contains(">Claims per minute</text>"));
        assert!(svg.contains("<desc>No claims in these 0 minutes.</desc>"));
    }
}
