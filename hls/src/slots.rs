//! A playlist whose URIs each take a query parameter that changes per request (a playback
//! token): cut once where the parameter goes, then filled in per request without reading the
//! text again.

/// A playlist cut at the end of every URI: URI lines and `URI="…"` attributes (RFC 8216 §4.2
/// attribute lists: EXT-X-MAP, EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-RENDITION-REPORT,
/// EXT-X-MEDIA and the rest). Lines end in `\n`, whatever they ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriSlots {
    text: String,
    /// Where a parameter goes, and whether the URI already has a query (`&` rather than `?`).
    slots: Vec<(usize, bool)>,
}

impl UriSlots {
    /// Cuts `playlist`.
    pub fn new(playlist: &str) -> UriSlots {
        let mut text = String::with_capacity(playlist.len() + 1);
        let mut slots = Vec::new();
        let mut slot = |text: &String, uri: &str| slots.push((text.len(), uri.contains('?')));
        for line in playlist.lines() {
            if line.is_empty() {
            } else if !line.starts_with('#') {
                text.push_str(line);
                slot(&text, line);
            } else if let Some(pos) = line.find("URI=\"") {
                let start = pos + 5;
                match line[start..].find('"') {
                    Some(len) => {
                        let end = start + len;
                        text.push_str(&line[..end]);
                        slot(&text, &line[start..end]);
                        text.push_str(&line[end..]);
                    }
                    None => text.push_str(line),
                }
            } else {
                text.push_str(line);
            }
            text.push('\n');
        }
        UriSlots { text, slots }
    }

    /// The playlist with `param` (`name=value`, already escaped) added to every URI's query.
    pub fn fill(&self, param: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + self.slots.len() * (param.len() + 1));
        let mut at = 0;
        for &(pos, has_query) in &self.slots {
            out.push_str(&self.text[at..pos]);
            out.push(if has_query { '&' } else { '?' });
            out.push_str(param);
            at = pos;
        }
        out.push_str(&self.text[at..]);
        out
    }

    /// The playlist as cut, without parameters.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_gets_the_parameter() {
        let p = "#EXTM3U\r\n#EXT-X-MAP:URI=\"init.mp4\"\n\n#EXT-X-PART:DURATION=0.32,URI=\"p_1.m4s?x=1\"\nseg_1.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p_2.m4s\"\n#EXT-X-BAD:URI=\"open\n";
        let s = UriSlots::new(p);
        assert_eq!(
            s.fill("token=T"),
            "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?token=T\"\n\n#EXT-X-PART:DURATION=0.32,URI=\"p_1.m4s?x=1&token=T\"\nseg_1.m4s?token=T\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p_2.m4s?token=T\"\n#EXT-X-BAD:URI=\"open\n"
        );
        assert_eq!(
            s.text(),
            s.fill("")
                .replace("?\"", "\"")
                .replace("&\"", "\"")
                .replace("?\n", "\n")
        );
    }

    #[test]
    fn a_playlist_without_uris_is_unchanged_but_for_line_ends() {
        assert_eq!(
            UriSlots::new("#EXTM3U\r\n#EXT-X-ENDLIST").fill("a=b"),
            "#EXTM3U\n#EXT-X-ENDLIST\n"
        );
        assert_eq!(UriSlots::new("").fill("a=b"), "");
    }
}
