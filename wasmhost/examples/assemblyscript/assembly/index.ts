// The quotes transform (see ../../quotes/quotes.go, the rules it shares with the Go versions)
// as a wasmhost ABI v1 guest in AssemblyScript. It allocates nothing per record: the batch and
// the results live in two buffers reused from batch to batch, and records are scanned in place.
// Members the transform reads must not hold JSON escapes (they are refused, not decoded).

const ABI_VERSION: i32 = 1;

let inPtr: usize = 0;
let inCap: usize = 0;
let outPtr: usize = 0;
let outCap: usize = 0;
let outLen: usize = 0;

export function connect_abi_version(): i32 {
  return ABI_VERSION;
}

export function connect_alloc(n: i32): i32 {
  if (<usize>n > inCap) {
    inPtr = inCap == 0 ? heap.alloc(<usize>n) : heap.realloc(inPtr, <usize>n);
    inCap = <usize>n;
  }
  return <i32>inPtr;
}

function ensure(extra: usize): void {
  if (outLen + extra <= outCap) return;
  let c = outCap == 0 ? <usize>65536 : outCap;
  while (c < outLen + extra) c <<= 1;
  outPtr = outCap == 0 ? heap.alloc(c) : heap.realloc(outPtr, c);
  outCap = c;
}

function putByte(b: u8): void {
  ensure(1);
  store<u8>(outPtr + outLen, b);
  outLen += 1;
}

function putU32(v: u32): void {
  ensure(4);
  store<u32>(outPtr + outLen, v);
  outLen += 4;
}

function putStr(s: string): void {
  // ASCII only (every literal below is).
  const n = s.length;
  ensure(<usize>n);
  for (let i = 0; i < n; i++) store<u8>(outPtr + outLen + <usize>i, <u8>s.charCodeAt(i));
  outLen += <usize>n;
}

function putInt(v: i64): void {
  if (v < 0) {
    putByte(45);
    v = -v;
  }
  let digits: i32 = 1;
  let t = v;
  while (t >= 10) {
    t /= 10;
    digits++;
  }
  ensure(<usize>digits);
  for (let i = digits - 1; i >= 0; i--) {
    store<u8>(outPtr + outLen + <usize>i, <u8>(48 + v % 10));
    v /= 10;
  }
  outLen += <usize>digits;
}

function putUpper(p: usize, n: usize): void {
  ensure(n);
  for (let i: usize = 0; i < n; i++) {
    let c = load<u8>(p + i);
    if (c >= 97 && c <= 122) c -= 32;
    store<u8>(outPtr + outLen + i, c);
  }
  outLen += n;
}

// A refusal entry: tag 1, the field, the reason.
function refuse(field: string, reason: string): void {
  putByte(1);
  putU32(<u32>field.length);
  putStr(field);
  putU32(<u32>reason.length);
  putStr(reason);
}

// --- a scanner over one record's JSON text -----------------------------------------------

let pos: usize = 0;
let end: usize = 0;

// Spans of the members the transform reads (start, length; kind 0 absent, 1 string, 2 other,
// 3 string with escapes).
let symP: usize = 0, symN: usize = 0, symK: i32 = 0;
let priP: usize = 0, priN: usize = 0, priK: i32 = 0;
let curP: usize = 0, curN: usize = 0, curK: i32 = 0;
let tsP: usize = 0, tsN: usize = 0, tsK: i32 = 0;
let volP: usize = 0, volN: usize = 0, volK: i32 = 0;

function ws(): void {
  while (pos < end) {
    const c = load<u8>(pos);
    if (c != 32 && c != 9 && c != 10 && c != 13) return;
    pos++;
  }
}

// skipString moves past a string whose opening quote is at pos; returns -1 when unterminated,
// 1 when it holds an escape, 0 otherwise.
function skipString(): i32 {
  pos++;
  let esc: i32 = 0;
  while (pos < end) {
    const c = load<u8>(pos);
    if (c == 34) {
      pos++;
      return esc;
    }
    if (c == 92) {
      esc = 1;
      pos++;
    }
    pos++;
  }
  return -1;
}

// skipValue moves past any JSON value; false when malformed.
function skipValue(): bool {
  ws();
  if (pos >= end) return false;
  const c = load<u8>(pos);
  if (c == 34) return skipString() >= 0;
  if (c == 123 || c == 91) {
    let depth = 0;
    while (pos < end) {
      const d = load<u8>(pos);
      if (d == 34) {
        if (skipString() < 0) return false;
        continue;
      }
      if (d == 123 || d == 91) depth++;
      else if (d == 125 || d == 93) {
        depth--;
        if (depth == 0) {
          pos++;
          return true;
        }
      }
      pos++;
    }
    return false;
  }
  const start = pos;
  while (pos < end) {
    const d = load<u8>(pos);
    if (d == 44 || d == 125 || d == 93 || d == 32 || d == 9 || d == 10 || d == 13) break;
    pos++;
  }
  return pos > start;
}

function keyIs(p: usize, n: usize, s: string): bool {
  if (n != <usize>s.length) return false;
  for (let i: usize = 0; i < n; i++) if (load<u8>(p + i) != <u8>s.charCodeAt(<i32>i)) return false;
  return true;
}

// scan reads the members; false when the text is not a JSON object.
function scan(p: usize, n: usize): bool {
  pos = p;
  end = p + n;
  symK = 0; priK = 0; curK = 0; tsK = 0; volK = 0;
  ws();
  if (pos >= end || load<u8>(pos) != 123) return false;
  pos++;
  ws();
  if (pos < end && load<u8>(pos) == 125) return true;
  while (pos < end) {
    ws();
    if (pos >= end || load<u8>(pos) != 34) return false;
    const kp = pos + 1;
    if (skipString() < 0) return false;
    const kn = pos - 1 - kp;
    ws();
    if (pos >= end || load<u8>(pos) != 58) return false;
    pos++;
    ws();
    const vp = pos;
    const isStr = pos < end && load<u8>(pos) == 34;
    let esc: i32 = 0;
    if (isStr) {
      esc = skipString();
      if (esc < 0) return false;
    } else if (!skipValue()) return false;
    const kind: i32 = isStr ? (esc == 1 ? 3 : 1) : 2;
    const sp = isStr ? vp + 1 : vp;
    const sn = isStr ? pos - vp - 2 : pos - vp;
    if (keyIs(kp, kn, "symbol")) { symP = sp; symN = sn; symK = kind; }
    else if (keyIs(kp, kn, "price")) { priP = sp; priN = sn; priK = kind; }
    else if (keyIs(kp, kn, "currency")) { curP = sp; curN = sn; curK = kind; }
    else if (keyIs(kp, kn, "ts")) { tsP = sp; tsN = sn; tsK = kind; }
    else if (keyIs(kp, kn, "volume")) { volP = sp; volN = sn; volK = kind; }
    ws();
    if (pos >= end) return false;
    const c = load<u8>(pos);
    pos++;
    if (c == 125) {
      ws();
      return pos == end;
    }
    if (c != 44) return false;
  }
  return false;
}

function symbolOK(): bool {
  if (symK != 1 || symN == 0 || symN > 12) return false;
  for (let i: usize = 0; i < symN; i++) {
    const c = load<u8>(symP + i);
    if (!((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 46 || c == 45)) return false;
  }
  return true;
}

function currencyOK(): bool {
  if (curK != 1 || curN != 3) return false;
  for (let i: usize = 0; i < 3; i++) {
    const c = load<u8>(curP + i);
    if (!((c >= 97 && c <= 122) || (c >= 65 && c <= 90))) return false;
  }
  return true;
}

// cents parses the price span; -1 when it breaks the rule.
function cents(): i64 {
  let intN: usize = priN;
  let fracN: usize = 0;
  for (let i: usize = 0; i < priN; i++) {
    if (load<u8>(priP + i) == 46) {
      intN = i;
      fracN = priN - i - 1;
      if (fracN == 0) return -1;
      break;
    }
  }
  if (intN == 0 || intN > 12 || fracN > 2) return -1;
  let c: i64 = 0;
  for (let i: usize = 0; i < intN; i++) {
    const d = load<u8>(priP + i);
    if (d < 48 || d > 57) return -1;
    c = c * 10 + <i64>(d - 48);
  }
  for (let i: usize = 0; i < 2; i++) {
    c *= 10;
    if (i < fracN) {
      const d = load<u8>(priP + intN + 1 + i);
      if (d < 48 || d > 57) return -1;
      c += <i64>(d - 48);
    }
  }
  return c;
}

// integer parses a number span as a whole number; i64.MIN_VALUE when it is not one.
function integer(p: usize, n: usize): i64 {
  let i: usize = 0;
  let neg = false;
  if (n > 0 && load<u8>(p) == 45) {
    neg = true;
    i = 1;
  }
  if (i == n || n - i > 18) return i64.MIN_VALUE;
  let v: i64 = 0;
  for (; i < n; i++) {
    const d = load<u8>(p + i);
    if (d < 48 || d > 57) return i64.MIN_VALUE;
    v = v * 10 + <i64>(d - 48);
  }
  return neg ? -v : v;
}

function record(sp: usize, sn: usize, dp: usize, dn: usize): void {
  if (!keyIs(sp, sn, "quotes")) {
    refuse("", "unknown stream: this transform knows \"quotes\"");
    return;
  }
  if (!scan(dp, dn)) {
    refuse("", "not a quotes record: not a JSON object");
    return;
  }
  if (!symbolOK()) {
    refuse("/symbol", "required: 1 to 12 of A-Z a-z 0-9 . -");
    return;
  }
  if (priK == 0) {
    refuse("/price", "required: a decimal string such as \"187.23\"");
    return;
  }
  const c = priK == 1 ? cents() : -1;
  if (c < 0) {
    refuse("/price", "must be a decimal string with at most 12 integer and 2 fraction digits");
    return;
  }
  if (!currencyOK()) {
    refuse("/currency", "required: three ASCII letters");
    return;
  }
  if (tsK == 0) {
    refuse("/ts", "required: whole seconds since the epoch");
    return;
  }
  const ts = tsK == 2 ? integer(tsP, tsN) : i64.MIN_VALUE;
  if (ts < 0 || ts > 100000000000) {
    refuse("/ts", "must be whole seconds since the epoch, 0 to 100000000000");
    return;
  }
  let vol: i64 = -1;
  if (volK != 0) {
    vol = volK == 2 ? integer(volP, volN) : i64.MIN_VALUE;
    if (vol < 0) {
      refuse("/volume", "must be a non-negative integer");
      return;
    }
  }
  putByte(0);
  const lenAt = outLen;
  putU32(0);
  putStr("{\"symbol\":\"");
  putUpper(symP, symN);
  putStr("\",\"price_cents\":");
  putInt(c);
  putStr(",\"currency\":\"");
  putUpper(curP, 3);
  putStr("\",\"observed_at_ms\":");
  putInt(ts * 1000);
  if (vol >= 0) {
    putStr(",\"volume\":");
    putInt(vol);
  }
  putByte(125);
  store<u32>(outPtr + lenAt, <u32>(outLen - lenAt - 4));
}

export function connect_transform(p: i32, n: i32): i64 {
  let at = <usize>p;
  const stop = at + <usize>n;
  outLen = 0;
  const count = load<u32>(at);
  at += 4;
  putU32(count);
  for (let i: u32 = 0; i < count; i++) {
    if (at + 4 > stop) unreachable();
    const sn = <usize>load<u32>(at);
    const sp = at + 4;
    at = sp + sn;
    if (at + 4 > stop) unreachable();
    const dn = <usize>load<u32>(at);
    const dp = at + 4;
    at = dp + dn;
    if (at > stop) unreachable();
    record(sp, sn, dp, dn);
  }
  return (<i64>outPtr << 32) | <i64>outLen;
}
