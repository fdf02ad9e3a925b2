//! One stream entry: what an instance tells the others, as fields of an
//! `XADD` and back out of an `XREAD`.
//!
//! ```text
//! XADD duplex:stream MAXLEN ~ 100000 * o b:5f0c… s 42 t say m 3 n alice r lobby x hello
//!                                      │        │    │     │   │       │       └ text, data or roster
//!                                      │        │    │     │   │       └ the member's room
//!                                      │        │    │     │   └ the member's name
//!                                      │        │    │     └ the member's number on its instance
//!                                      │        │    └ what happened (Kind)
//!                                      │        └ the origin's sequence number: 1, 2, 3...
//!                                      └ the origin: instance name, a colon, a number drawn at start
//! ```
//!
//! Every entry that concerns a member carries its name and room, so an
//! instance that missed the member's arrival (it started later, or the
//! stream was trimmed) can still show the line and place the member.

use crate::resp::Value;

/// What an entry says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An instance started, or came back: every other instance answers
    /// with its roster.
    Hello,
    /// An instance is alive (sent every `--redis-ttl` / 3).
    Heartbeat,
    /// All the members of an instance, one per line of the payload
    /// (`number TAB name TAB room`): the others make their picture of that
    /// instance agree with it.
    Roster,
    /// A member arrived.
    Join,
    /// A member left.
    Leave,
    /// A member took a name.
    Nick,
    /// A member moved to another room.
    Move,
    /// A chat line; the payload is its text.
    Say,
    /// A binary message; the payload is its bytes.
    Binary,
    /// A binary message too large to relay ([`super::MAX_RELAYED_BINARY`]);
    /// the payload is its size, in decimal.
    Withheld,
    /// An instance is shutting down: its members are gone.
    Bye,
}

impl Kind {
    /// The value of the `t` field.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Hello => "hello",
            Kind::Heartbeat => "hb",
            Kind::Roster => "roster",
            Kind::Join => "join",
            Kind::Leave => "leave",
            Kind::Nick => "nick",
            Kind::Move => "move",
            Kind::Say => "say",
            Kind::Binary => "bin",
            Kind::Withheld => "withheld",
            Kind::Bye => "bye",
        }
    }

    fn from_tag(tag: &[u8]) -> Option<Kind> {
        [
            Kind::Hello,
            Kind::Heartbeat,
            Kind::Roster,
            Kind::Join,
            Kind::Leave,
            Kind::Nick,
            Kind::Move,
            Kind::Say,
            Kind::Binary,
            Kind::Withheld,
            Kind::Bye,
        ]
        .into_iter()
        .find(|k| k.tag().as_bytes() == tag)
    }
}

/// One entry, as read from the stream (or about to be added to it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// `instance:nonce`: who added it. The nonce tells a restarted
    /// instance from its earlier life, whose numbers started again at 1.
    pub origin: String,
    /// The origin's sequence number, counting from 1.
    pub seq: u64,
    /// What happened (`None` only while being read: an unknown kind).
    pub kind: Option<Kind>,
    /// The member's number on its instance.
    pub member: u32,
    /// The member's name.
    pub name: String,
    /// The member's room.
    pub room: String,
    /// Text, binary data, or the roster's lines.
    pub payload: Vec<u8>,
}

impl Entry {
    /// The `XADD` that adds this entry to `key`, trimming the stream to
    /// about `maxlen` entries (`~`: Redis trims whole nodes, cheaper than
    /// exact, and keeps at least that many).
    pub fn xadd(&self, key: &str, maxlen: usize, out: &mut Vec<u8>) {
        let (seq, member, maxlen) = (self.seq.to_string(), self.member.to_string(), maxlen.to_string());
        let kind = self.kind.map_or("?", Kind::tag);
        let mut args: Vec<&[u8]> = vec![
            b"XADD",
            key.as_bytes(),
            b"MAXLEN",
            b"~",
            maxlen.as_bytes(),
            b"*",
            b"o",
            self.origin.as_bytes(),
            b"s",
            seq.as_bytes(),
            b"t",
            kind.as_bytes(),
        ];
        if !self.name.is_empty() {
            args.extend([
                b"m".as_slice(),
                member.as_bytes(),
                b"n",
                self.name.as_bytes(),
                b"r",
                self.room.as_bytes(),
            ]);
        }
        if !self.payload.is_empty() {
            args.extend([b"x".as_slice(), &self.payload]);
        }
        crate::resp::encode_command(out, &args);
    }

    /// An entry from the field-value pairs `XREAD` returned. `Err` says
    /// what is wrong with a malformed one, which is skipped and logged
    /// (something other than duplex wrote to the stream).
    pub fn from_fields(fields: &[Value]) -> Result<Entry, &'static str> {
        let mut entry = Entry::default();
        let mut kind = None;
        for pair in fields.chunks(2) {
            let [field, value] = pair else {
                return Err("an odd number of fields");
            };
            let (Some(field), Some(value)) = (field.bytes(), value.bytes()) else {
                return Err("a field that is not a string");
            };
            let text = || String::from_utf8(value.to_vec()).map_err(|_| "a field that is not UTF-8");
            match field {
                b"o" => entry.origin = text()?,
                b"s" => entry.seq = text()?.parse().map_err(|_| "a sequence number that is not one")?,
                b"t" => kind = Some(Kind::from_tag(value)),
                b"m" => entry.member = text()?.parse().map_err(|_| "a member number that is not one")?,
                b"n" => entry.name = text()?,
                b"r" => entry.room = text()?,
                b"x" => entry.payload = value.to_vec(),
                _ => {}
            }
        }
        if entry.origin.is_empty() || entry.seq == 0 {
            return Err("no origin or sequence number");
        }
        entry.kind = kind.ok_or("no kind")?;
        if entry.kind.is_none() {
            return Err("an unknown kind");
        }
        Ok(entry)
    }

    /// The instance name in the origin (`b` of `b:5f0c…`).
    pub fn instance(&self) -> &str {
        instance_of(&self.origin)
    }
}

/// The instance name in an origin.
pub fn instance_of(origin: &str) -> &str {
    origin.split(':').next().unwrap_or(origin)
}

/// A roster's payload: one `number TAB name TAB room` line per member.
/// Names and rooms hold no whitespace (the hub refuses it), so the tabs
/// and newlines are unambiguous.
pub fn roster<'a>(members: impl Iterator<Item = (u32, &'a str, &'a str)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (number, name, room) in members {
        out.extend_from_slice(format!("{number}\t{name}\t{room}\n").as_bytes());
    }
    out
}

/// A roster's lines back; malformed lines are skipped.
pub fn roster_members(payload: &[u8]) -> Vec<(u32, &str, &str)> {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            let number = parts.next()?.parse().ok()?;
            Some((number, parts.next()?, parts.next()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{decode, Limits};

    #[test]
    fn an_entry_goes_out_as_xadd_and_comes_back_from_its_fields() {
        let entry = Entry {
            origin: "b:1f".into(),
            seq: 42,
            kind: Some(Kind::Say),
            member: 3,
            name: "alice".into(),
            room: "lobby".into(),
            payload: b"hello\r\nthere".to_vec(),
        };
        let mut out = Vec::new();
        entry.xadd("duplex:stream", 1000, &mut out);
        let (command, _) = decode(&out, &Limits::default()).unwrap().unwrap();
        let args = command.items().unwrap();
        let words: Vec<&[u8]> = args[..6].iter().filter_map(Value::bytes).collect();
        assert_eq!(
            words,
            [&b"XADD"[..], b"duplex:stream", b"MAXLEN", b"~", b"1000", b"*"]
        );
        assert_eq!(Entry::from_fields(&args[6..]), Ok(entry));
    }

    #[test]
    fn malformed_entries_say_why() {
        let bulk = |s: &str| Value::Bulk(Some(s.as_bytes().to_vec()));
        let fields = |pairs: &[&str]| pairs.iter().map(|s| bulk(s)).collect::<Vec<_>>();
        assert_eq!(
            Entry::from_fields(&fields(&["o", "a:1", "s", "x", "t", "hb"])),
            Err("a sequence number that is not one")
        );
        assert_eq!(
            Entry::from_fields(&fields(&["o", "a:1", "s", "1", "t", "dance"])),
            Err("an unknown kind")
        );
        assert_eq!(
            Entry::from_fields(&fields(&["o", "a:1", "s"])),
            Err("an odd number of fields")
        );
        assert_eq!(
            Entry::from_fields(&fields(&["t", "hb"])),
            Err("no origin or sequence number")
        );
    }

    #[test]
    fn a_roster_lists_members_one_per_line() {
        let payload = roster([(1, "alice", "lobby"), (7, "bob", "Room")].into_iter());
        assert_eq!(payload, b"1\talice\tlobby\n7\tbob\tRoom\n");
        assert_eq!(
            roster_members(&payload),
            [(1, "alice", "lobby"), (7, "bob", "Room")]
        );
        assert_eq!(roster_members(b"x\ty\n3\tc\td\n"), [(3, "c", "d")]);
    }
}
