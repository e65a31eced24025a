//! A small namespace-aware XML tree for checking the documents the server writes.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// One element with its resolved namespace, attributes (by local name) and text.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub namespace: String,
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// Returns the value of the attribute with local name `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns the children with local name `name`.
    pub fn all(&self, name: &str) -> Vec<&Element> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    /// Returns the only child with local name `name`, or panics with the element.
    pub fn child(&self, name: &str) -> &Element {
        let found = self.all(name);
        assert_eq!(found.len(), 1, "expected one {name} in {self:#?}");
        found[0]
    }

    /// Follows a path of local names, one child at each step.
    pub fn path(&self, names: &[&str]) -> &Element {
        names.iter().fold(self, |element, name| element.child(name))
    }
}

/// Parses `text` into its root element, or panics with the parser error.
pub fn parse(text: &str) -> Element {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let (namespace, event) = reader.read_resolved_event().expect("well-formed XML");
        let namespace = match namespace {
            ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(start) => stack.push(element(&start, namespace)),
            Event::Empty(start) => {
                let done = element(&start, namespace);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return done,
                }
            }
            Event::End(_) => {
                let done = stack.pop().expect("balanced");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return done,
                }
            }
            Event::Text(text) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&text.decode().expect("text"));
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().expect("reference") {
                    Some(c) => c.to_string(),
                    None => match reference.decode().expect("name").as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => panic!("unknown entity {other}"),
                    },
                };
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&resolved);
                }
            }
            Event::Eof => panic!("document ended before its root element closed"),
            _ => {}
        }
    }
}

fn element(start: &BytesStart<'_>, namespace: String) -> Element {
    let attributes = start
        .attributes()
        .map(|attribute| {
            let attribute = attribute.expect("attribute");
            let key = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
            let value = attribute.unescape_value().expect("value").into_owned();
            (key, value)
        })
        .collect();
    Element {
        namespace,
        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        attributes,
        ..Default::default()
    }
}
