//! Mattermost's Markdown subset as HTML: emphasis, code spans and blocks, links, lists,
//! quotes, tables and strike-through. As in Mattermost, a single newline is a line break and
//! raw HTML is shown as text, never interpreted; links may only be web or mail links.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

pub(crate) fn to_html(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::SoftBreak => Event::HardBreak,
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            dest_url, title, ..
        }) => Event::Start(Tag::Link {
            link_type: pulldown_cmark::LinkType::Inline,
            dest_url: safe_url(dest_url),
            title,
            id: CowStr::Borrowed(""),
        }),
        Event::End(pulldown_cmark::TagEnd::Image) => Event::End(pulldown_cmark::TagEnd::Link),
        other => other,
    });
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// `javascript:` and other schemes become a dead link.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim_start().to_ascii_lowercase();
    if ["http://", "https://", "mailto:"]
        .iter()
        .any(|s| lower.starts_with(s))
    {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn renders_the_services_markup_like_mattermost() {
        let html = to_html(
            "*New request*\n**User**: alice\n**Reason**: ```\nfix it```\n[link](https://x.test/r)",
        );
        assert!(html.contains("<em>New request</em><br />"), "{html}");
        assert!(
            html.contains("<strong>User</strong>: alice<br />"),
            "{html}"
        );
        // A code span across a line break, as the service writes reasons: the break is a space.
        assert!(html.contains("<code> fix it</code>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://x.test/r">link</a>"#),
            "{html}"
        );
    }

    #[test]
    fn raw_html_and_script_links_stay_inert() {
        let html = to_html(
            "<script>alert(1)</script>\n\nsee <b>this</b> [x](javascript:alert(1)) ![i](data:x)",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("see &lt;b&gt;this&lt;/b&gt;"), "{html}");
        assert!(html.contains(r##"<a href="#">x</a>"##), "{html}");
        assert!(!html.contains("data:x") && !html.contains("<img"), "{html}");
    }
}
