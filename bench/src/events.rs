//! Nexmark events as JSON: the flat object each event is in its topic (`person`, `auction`,
//! `bid` with snake_case fields, times in epoch milliseconds), and the export line peers
//! read (`{"event_type":N,"person"|"auction"|"bid":{…}}`, the shape of Flink's Nexmark
//! source: 0 person, 1 auction, 2 bid). Written by hand into a reused buffer: the
//! generator makes millions of these.

use nexmark::event::{Auction, Bid, Event, Person};

/// The three Nexmark event kinds, in the order of their `event_type` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Person,
    Auction,
    Bid,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Person, Kind::Auction, Kind::Bid];

    pub fn of(event: &Event) -> Kind {
        match event {
            Event::Person(_) => Kind::Person,
            Event::Auction(_) => Kind::Auction,
            Event::Bid(_) => Kind::Bid,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Auction => "auction",
            Kind::Bid => "bid",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Appends the event's JSON object to `out`.
pub fn write_value(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Person(p) => person(p, out),
        Event::Auction(a) => auction(a, out),
        Event::Bid(b) => bid(b, out),
    }
}

/// Appends the event's export line (with its newline) to `out`.
pub fn write_export_line(event: &Event, out: &mut Vec<u8>) {
    let kind = Kind::of(event);
    out.extend_from_slice(b"{\"event_type\":");
    number(kind.index() as u64, out);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(kind.name().as_bytes());
    out.extend_from_slice(b"\":");
    write_value(event, out);
    out.extend_from_slice(b"}\n");
}

/// The event's time in epoch milliseconds.
pub fn time_ms(event: &Event) -> i64 {
    i64::try_from(event.timestamp()).unwrap_or(i64::MAX)
}

fn person(p: &Person, out: &mut Vec<u8>) {
    let mut o = Object::new(out);
    o.num("id", p.id as u64);
    o.str("name", &p.name);
    o.str("email_address", &p.email_address);
    o.str("credit_card", &p.credit_card);
    o.str("city", &p.city);
    o.str("state", &p.state);
    o.num("date_time", p.date_time);
    o.str("extra", &p.extra);
    o.end();
}

fn auction(a: &Auction, out: &mut Vec<u8>) {
    let mut o = Object::new(out);
    o.num("id", a.id as u64);
    o.str("item_name", &a.item_name);
    o.str("description", &a.description);
    o.num("initial_bid", a.initial_bid as u64);
    o.num("reserve", a.reserve as u64);
    o.num("date_time", a.date_time);
    o.num("expires", a.expires);
    o.num("seller", a.seller as u64);
    o.num("category", a.category as u64);
    o.str("extra", &a.extra);
    o.end();
}

fn bid(b: &Bid, out: &mut Vec<u8>) {
    let mut o = Object::new(out);
    o.num("auction", b.auction as u64);
    o.num("bidder", b.bidder as u64);
    o.num("price", b.price as u64);
    o.str("channel", &b.channel);
    o.str("url", &b.url);
    o.num("date_time", b.date_time);
    o.str("extra", &b.extra);
    o.end();
}

/// A JSON object being written: commas between fields, keys known to need no escaping.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        number(value, self.out);
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        string(value, self.out);
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

fn number(value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = value;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn string(value: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in value.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexmark::EventGenerator;
    use nexmark::config::NexmarkConfig;

    #[test]
    fn values_are_json_with_the_generators_fields() {
        let cfg = NexmarkConfig {
            base_time: 1_767_225_600_000,
            ..Default::default()
        };
        let mut seen = [false; 3];
        for event in EventGenerator::new(cfg).take(60) {
            let mut value = Vec::new();
            write_value(&event, &mut value);
            let v: serde_json::Value = serde_json::from_slice(&value).expect("valid JSON");
            assert_eq!(v["date_time"].as_i64(), Some(time_ms(&event)));
            let mut line = Vec::new();
            write_export_line(&event, &mut line);
            assert_eq!(line.last(), Some(&b'\n'));
            let l: serde_json::Value = serde_json::from_slice(&line).expect("valid JSON");
            let kind = Kind::of(&event);
            assert_eq!(l["event_type"].as_u64(), Some(kind.index() as u64));
            assert_eq!(l[kind.name()], v);
            seen[kind.index()] = true;
            if let Event::Bid(b) = &event {
                assert_eq!(v["price"].as_u64(), Some(b.price as u64));
                assert_eq!(v["channel"].as_str(), Some(b.channel.as_str()));
            }
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        string("a\"b\\c\nd", &mut out);
        assert_eq!(out, br#""a\"b\\c\u000ad""#);
        let mut n = Vec::new();
        number(0, &mut n);
        number(u64::MAX, &mut n);
        assert_eq!(n, b"018446744073709551615");
    }
}
