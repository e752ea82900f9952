//! SQL92 filter expressions on message properties, as RocketMQ's SQL filter accepts them:
//! comparisons (`=`, `<>`, `!=`, `<`, `<=`, `>`, `>=`), `BETWEEN`, `IN`, `IS [NOT] NULL`,
//! `CONTAINS`, `STARTSWITH`, `ENDSWITH` (each with `NOT`), `AND`, `OR`, `NOT`, parentheses;
//! string ('it''s'), integer, decimal and boolean literals. Identifiers name user
//! properties; `TAGS` is the message's tag.
//!
//! Three-valued logic: a missing property makes a comparison unknown, and a message matches
//! only when the whole expression is true. A property compared with a number is read as a
//! number (unknown if it is not one).

use std::fmt;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, Op, Operand),
    Between {
        value: Operand,
        low: Operand,
        high: Operand,
        negated: bool,
    },
    In {
        value: Operand,
        list: Vec<Literal>,
        negated: bool,
    },
    IsNull {
        value: Operand,
        negated: bool,
    },
    Text {
        value: Operand,
        op: TextOp,
        pattern: String,
        negated: bool,
    },
    Literal(Literal),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Property(String),
    Literal(Literal),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
    LParen,
    RParen,
    Comma,
}

const MAX_LEN: usize = 4096;

fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    if src.len() > MAX_LEN {
        return Err(ParseError(format!("expression longer than {MAX_LEN} bytes")));
    }
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(ParseError("unterminated string literal".into())),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            '=' => {
                tokens.push(Token::Sym("="));
                i += 1;
            }
            '<' | '>' | '!' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let sym = match two.as_str() {
                    "<=" => "<=",
                    ">=" => ">=",
                    "<>" => "<>",
                    "!=" => "<>",
                    _ if c == '<' => "<",
                    _ if c == '>' => ">",
                    _ => return Err(ParseError(format!("unexpected '{c}' at {i}"))),
                };
                i += if sym.len() == 2 || two == "!=" { 2 } else { 1 };
                tokens.push(Token::Sym(sym));
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '.') && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|ch| ch.is_ascii_digit() || matches!(ch, '.' | 'e' | 'E'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n: f64 = text.parse().map_err(|_| ParseError(format!("bad number {text:?}")))?;
                tokens.push(Token::Num(n));
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '$' | '.'))
                {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(ParseError(format!("unexpected {other:?} at {i}"))),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// Nesting deeper than this is refused (no stack exhaustion on hostile input).
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let yes = self.keyword(word);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), ParseError> {
        if self.eat_keyword(word) {
            Ok(())
        } else {
            Err(ParseError(format!("expected {word} at token {}", self.pos)))
        }
    }

    fn expect(&mut self, t: Token) -> Result<(), ParseError> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(ParseError(format!("expected {t:?} at token {}", self.pos)))
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError("expression nested too deeply".into()));
        }
        let mut left = self.and()?;
        while self.eat_keyword("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.not()?;
        while self.eat_keyword("AND") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let lit = match self.peek() {
            Some(Token::Str(s)) => Literal::Str(s.clone()),
            Some(Token::Num(n)) => Literal::Num(*n),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("TRUE") => Literal::Bool(true),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("FALSE") => Literal::Bool(false),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("NULL") => Literal::Null,
            other => return Err(ParseError(format!("expected a literal, found {other:?}"))),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        match self.peek() {
            Some(Token::Ident(w)) if !["TRUE", "FALSE", "NULL"].iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                let name = w.clone();
                self.pos += 1;
                Ok(Operand::Property(name))
            }
            _ => Ok(Operand::Literal(self.literal()?)),
        }
    }

    fn predicate(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Token::RParen)?;
            return Ok(e);
        }
        let value = self.operand()?;
        let negated = self.eat_keyword("NOT");
        if self.eat_keyword("BETWEEN") {
            let low = self.operand()?;
            self.expect_keyword("AND")?;
            let high = self.operand()?;
            return Ok(Expr::Between {
                value,
                low,
                high,
                negated,
            });
        }
        if self.eat_keyword("IN") {
            self.expect(Token::LParen)?;
            let mut list = vec![self.literal()?];
            while self.peek() == Some(&Token::Comma) {
                self.pos += 1;
                list.push(self.literal()?);
            }
            self.expect(Token::RParen)?;
            return Ok(Expr::In { value, list, negated });
        }
        for (word, op) in [
            ("CONTAINS", TextOp::Contains),
            ("STARTSWITH", TextOp::StartsWith),
            ("ENDSWITH", TextOp::EndsWith),
        ] {
            if self.eat_keyword(word) {
                let Literal::Str(pattern) = self.literal()? else {
                    return Err(ParseError(format!("{word} takes a string")));
                };
                return Ok(Expr::Text {
                    value,
                    op,
                    pattern,
                    negated,
                });
            }
        }
        if negated {
            return Err(ParseError(
                "NOT must precede BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH here".into(),
            ));
        }
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            self.expect_keyword("NULL")?;
            return Ok(Expr::IsNull { value, negated });
        }
        let op = match self.peek() {
            Some(Token::Sym(s)) => match *s {
                "=" => Op::Eq,
                "<>" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                _ => return Err(ParseError(format!("unknown operator {s}"))),
            },
            _ => {
                return match value {
                    Operand::Literal(Literal::Bool(b)) => Ok(Expr::Literal(Literal::Bool(b))),
                    _ => Err(ParseError(format!("expected an operator at token {}", self.pos))),
                };
            }
        };
        self.pos += 1;
        let right = self.operand()?;
        Ok(Expr::Compare(value, op, right))
    }
}

pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(src)?;
    if tokens.is_empty() {
        return Err(ParseError("empty expression".into()));
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(ParseError(format!(
            "unexpected {:?} after the expression",
            p.tokens[p.pos]
        )));
    }
    Ok(e)
}

/// A value during evaluation: what a property or literal stands for.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
}

fn literal_value(l: &Literal) -> Option<Value> {
    match l {
        Literal::Str(s) => Some(Value::Str(s.clone())),
        Literal::Num(n) => Some(Value::Num(*n)),
        Literal::Bool(b) => Some(Value::Bool(*b)),
        Literal::Null => None,
    }
}

impl Expr {
    /// True when the message's properties (`lookup`) satisfy the expression.
    pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        self.eval(lookup) == Some(true)
    }

    fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Option<bool> {
        let value = |o: &Operand| -> Option<Value> {
            match o {
                Operand::Property(p) => lookup(p).map(Value::Str),
                Operand::Literal(l) => literal_value(l),
            }
        };
        let not = |b: Option<bool>, negated: bool| b.map(|b| b != negated);
        match self {
            Expr::Or(a, b) => match (a.eval(lookup), b.eval(lookup)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Expr::And(a, b) => match (a.eval(lookup), b.eval(lookup)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Expr::Not(e) => e.eval(lookup).map(|b| !b),
            Expr::Literal(l) => match l {
                Literal::Bool(b) => Some(*b),
                _ => None,
            },
            Expr::Compare(a, op, b) => compare(value(a)?, *op, value(b)?),
            Expr::Between {
                value: v,
                low,
                high,
                negated,
            } => {
                let v = value(v)?;
                let inside = compare(v.clone(), Op::Ge, value(low)?)? && compare(v, Op::Le, value(high)?)?;
                not(Some(inside), *negated)
            }
            Expr::In {
                value: v,
                list,
                negated,
            } => {
                let v = value(v)?;
                let mut found = false;
                for l in list {
                    if let Some(lv) = literal_value(l) {
                        found |= compare(v.clone(), Op::Eq, lv) == Some(true);
                    }
                }
                not(Some(found), *negated)
            }
            Expr::IsNull { value: v, negated } => Some(value(v).is_none() != *negated),
            Expr::Text {
                value: v,
                op,
                pattern,
                negated,
            } => {
                let Value::Str(s) = value(v)? else { return None };
                let hit = match op {
                    TextOp::Contains => s.contains(pattern.as_str()),
                    TextOp::StartsWith => s.starts_with(pattern.as_str()),
                    TextOp::EndsWith => s.ends_with(pattern.as_str()),
                };
                not(Some(hit), *negated)
            }
        }
    }
}

/// Compares two values; a string meets a number as a number, unknown if it is not one.
fn compare(a: Value, op: Op, b: Value) -> Option<bool> {
    use std::cmp::Ordering;
    let as_num = |v: &Value| match v {
        Value::Num(n) => Some(*n),
        Value::Str(s) => s.trim().parse::<f64>().ok(),
        Value::Bool(_) => None,
    };
    let ord: Ordering = match (&a, &b) {
        (Value::Num(_), _) | (_, Value::Num(_)) => as_num(&a)?.partial_cmp(&as_num(&b)?)?,
        (Value::Str(x), Value::Str(y)) => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return None;
            }
            x.cmp(y)
        }
        (Value::Bool(x), Value::Bool(y)) => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return None;
            }
            x.cmp(y)
        }
        (Value::Str(s), Value::Bool(bl)) | (Value::Bool(bl), Value::Str(s)) => {
            let sb: bool = s.trim().parse().ok()?;
            if !matches!(op, Op::Eq | Op::Ne) {
                return None;
            }
            sb.cmp(bl)
        }
    };
    Some(match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn eval(expr: &str, props: &[(&str, &str)]) -> bool {
        let map: HashMap<String, String> = props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse(expr).unwrap().matches(&|k| map.get(k).cloned())
    }

    #[test]
    fn comparisons_and_logic() {
        let p = [("a", "7"), ("region", "eu-west"), ("flag", "true"), ("TAGS", "TagA")];
        assert!(eval("a > 5", &p));
        assert!(eval("a >= 7 AND a <= 7", &p));
        assert!(!eval("a < 7", &p));
        assert!(eval("a = 7.0", &p), "numbers compare as numbers");
        assert!(eval("region = 'eu-west'", &p));
        assert!(eval("region <> 'us' AND region != 'ap'", &p));
        assert!(eval("a BETWEEN 1 AND 10", &p));
        assert!(eval("a NOT BETWEEN 8 AND 10", &p));
        assert!(eval("region IN ('eu-west', 'us-east')", &p));
        assert!(eval("region NOT IN ('us-east')", &p));
        assert!(eval("missing IS NULL AND region IS NOT NULL", &p));
        assert!(eval(
            "region CONTAINS 'west' AND region STARTSWITH 'eu' AND region ENDSWITH 'west'",
            &p
        ));
        assert!(eval("region NOT CONTAINS 'north'", &p));
        assert!(eval("flag = TRUE", &p));
        assert!(eval("TAGS = 'TagA'", &p));
        assert!(eval("(a > 100 OR region = 'eu-west') AND NOT a = 3", &p));
        assert!(eval("TRUE", &p));
        assert!(!eval("FALSE", &p));
        assert!(eval("region = 'it''s'", &[("region", "it's")]));
    }

    #[test]
    fn unknown_is_not_a_match() {
        let p = [("a", "x")];
        assert!(!eval("missing > 1", &p));
        assert!(!eval("NOT missing > 1", &p), "NOT unknown is unknown");
        assert!(!eval("a > 1", &p), "a non-number compared with a number is unknown");
        assert!(eval("missing > 1 OR a = 'x'", &p));
        assert!(!eval("missing > 1 AND a = 'x'", &p));
        assert!(!eval("a > 'b'", &p), "strings are compared for equality only");
    }

    #[test]
    fn bad_expressions_are_errors() {
        for bad in [
            "",
            "a >",
            "a = 'x",
            "(a = 1",
            "a = 1 b",
            "a ~ 1",
            "a IN ()",
            "a NOT = 1",
            "a BETWEEN 1",
            "a CONTAINS 1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}a = 1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err(), "deep nesting is refused");
        assert!(parse(&"a = 1 AND ".repeat(1000)).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(src in "[a-z0-9 ()'<>=!,.ANDORNOTISUL]{0,60}", v in "[a-z0-9]{0,4}") {
            if let Ok(e) = parse(&src) {
                let _ = e.matches(&|_| Some(v.clone()));
            }
        }
    }
}
