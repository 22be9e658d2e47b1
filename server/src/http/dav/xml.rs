//! The XML WebDAV speaks: request bodies (`propfind`, `propertyupdate`,
//! `lockinfo`) read into a small tree with namespaces resolved (by
//! `quick-xml`), and the text of responses (`multistatus`, `prop`) written
//! with every name and value escaped.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// The DAV: namespace.
pub const DAV: &str = "DAV:";

/// One element: its namespace (empty for none), local name, children and text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The namespace URI it is in ("" for none).
    pub ns: String,
    /// Its local name.
    pub name: String,
    /// Its child elements, in order.
    pub children: Vec<Element>,
    /// Its text (and its children's, for an `owner`), trimmed.
    pub text: String,
}

impl Element {
    /// Whether it is `DAV:` `name`.
    pub fn is(&self, name: &str) -> bool {
        self.ns == DAV && self.name == name
    }

    /// Its first child that is `DAV:` `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(name))
    }
}

/// Why a body is not the XML asked for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the body is not well-formed XML: {0}")]
pub struct BadXml(pub String);

/// Reads a request body into its root element.
///
/// # Errors
/// [`BadXml`]: not UTF-8, not well-formed, a prefix never declared, no root.
pub fn parse(body: &[u8]) -> Result<Element, BadXml> {
    let text = std::str::from_utf8(body).map_err(|_| BadXml("not UTF-8".into()))?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| BadXml(e.to_string()))?;
        let ns = match ns {
            ResolveResult::Bound(ns) => ns.as_ref().to_string(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(prefix) => return Err(BadXml(format!("the prefix '{prefix}' is not declared"))),
        };
        match event {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_string();
                stack.push(Element { ns, name, ..Element::default() });
            }
            Event::Empty(start) => {
                let name = start.local_name().as_ref().to_string();
                let element = Element { ns, name, ..Element::default() };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::End(_) => {
                let mut done = stack.pop().ok_or_else(|| BadXml("an end without a start".into()))?;
                done.text = done.text.trim().to_string();
                match stack.last_mut() {
                    Some(parent) => {
                        parent.text.push_str(&done.text);
                        parent.children.push(done);
                    }
                    None => return Ok(done),
                }
            }
            Event::Text(text) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&text.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(open) = stack.last_mut() {
                    let name = reference.xml10_content();
                    let resolved = match name.as_ref() {
                        "lt" => "<".to_string(),
                        "gt" => ">".to_string(),
                        "amp" => "&".to_string(),
                        "apos" => "'".to_string(),
                        "quot" => "\"".to_string(),
                        other => reference
                            .resolve_char_ref()
                            .ok()
                            .flatten()
                            .map(String::from)
                            .ok_or_else(|| BadXml(format!("unknown entity '&{other};'")))?,
                    };
                    open.text.push_str(&resolved);
                }
            }
            Event::CData(data) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&data.xml10_content());
                }
            }
            Event::Eof => return Err(BadXml("the document ends before its root does".into())),
            _ => {}
        }
    }
}

/// `text` safe in XML text and attribute values.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// An element's name as written in a response: `D:name` for DAV:, else
/// with a namespace declaration of its own.
pub fn tag(ns: &str, name: &str) -> (String, String) {
    if ns == DAV {
        (format!("D:{name}"), String::new())
    } else if ns.is_empty() {
        (name.to_string(), " xmlns=\"\"".to_string())
    } else {
        (format!("X:{name}"), format!(" xmlns:X=\"{}\"", escape(ns)))
    }
}

/// An empty element (a property name in a `404` or `403` propstat).
pub fn empty(ns: &str, name: &str) -> String {
    let (tag, declaration) = tag(ns, name);
    format!("<{tag}{declaration}/>")
}

/// The XML declaration and a `multistatus` opening, responses to follow.
pub const MULTISTATUS_START: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">\n";

/// The `multistatus` end.
pub const MULTISTATUS_END: &str = "</D:multistatus>\n";

/// A `propstat`: properties (already written) and their status.
pub fn propstat(props: &str, status: u16) -> String {
    format!(
        "<D:propstat><D:prop>{props}</D:prop><D:status>HTTP/1.1 {status} {}</D:status></D:propstat>",
        reason(status)
    )
}

/// The reason phrase of the statuses a multistatus carries.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        423 => "Locked",
        424 => "Failed Dependency",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_with_their_namespaces() {
        let body = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:z="urn:z">
            <D:prop><D:getetag/><z:color/><plain xmlns=""/></D:prop></D:propfind>"#;
        let root = parse(body).unwrap();
        assert!(root.is("propfind"));
        let prop = root.child("prop").unwrap();
        let names: Vec<(&str, &str)> = prop.children.iter().map(|c| (c.ns.as_str(), c.name.as_str())).collect();
        assert_eq!(names, [("DAV:", "getetag"), ("urn:z", "color"), ("", "plain")]);
        let owner = parse(b"<lockinfo xmlns='DAV:'><owner><href>mailto:a&amp;b</href></owner></lockinfo>").unwrap();
        assert_eq!(owner.child("owner").unwrap().text, "mailto:a&b");
        assert!(parse(b"<D:propfind xmlns:D='DAV:'><D:prop></D:propfind>").is_err(), "not well-formed");
        assert!(parse(b"<D:propfind><D:allprop/></D:propfind>").is_err(), "undeclared prefix");
        assert!(parse(b"").is_err() && parse(b"\xff").is_err());
    }

    #[test]
    fn names_and_text_are_escaped_in_responses() {
        assert_eq!(empty("DAV:", "getetag"), "<D:getetag/>");
        assert_eq!(empty("urn:a<b", "x"), "<X:x xmlns:X=\"urn:a&lt;b\"/>");
        assert_eq!(empty("", "x"), "<x xmlns=\"\"/>");
        assert_eq!(escape("a<&>\"'"), "a&lt;&amp;&gt;&quot;&apos;");
    }
}
