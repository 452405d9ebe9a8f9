//! Just enough `multipart/form-data` to read the reference's file upload: the
//! part named `file`.

/// One part of a multipart body.
pub struct Part<'a> {
    /// The `name` of its `Content-Disposition`.
    pub name: String,
    /// The `filename`, if any.
    pub filename: Option<String>,
    /// The raw content.
    pub data: &'a [u8],
}

/// The boundary from a `Content-Type: multipart/form-data; boundary=...`.
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("boundary"))
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Splits a multipart body into parts; `None` if it is malformed.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let delim = format!("--{boundary}");
    let sep = format!("\r\n--{boundary}");
    let mut pos = find(body, delim.as_bytes(), 0)? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some(parts);
        }
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return None;
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = String::from_utf8_lossy(&body[pos..head_end]);
        let data_start = head_end + 4;
        let data_end = find(body, sep.as_bytes(), data_start)?;
        let mut name = None;
        let mut filename = None;
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if !key.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for param in value.split(';').skip(1) {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"').to_string();
                match k.trim() {
                    "name" => name = Some(v),
                    "filename" => filename = Some(v),
                    _ => {}
                }
            }
        }
        parts.push(Part {
            name: name?,
            filename,
            data: &body[data_start..data_end],
        });
        pos = data_end + sep.len();
    }
}

/// Builds a body with one file part named `file`; returns (content type, body).
pub fn encode_file(filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("openhands-sync-{}", crate::util::id::uuid4_hex());
    let safe_name: String = filename
        .chars()
        .map(|c| {
            if c == '"' || c == '\r' || c == '\n' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut body = Vec::with_capacity(data.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data = b"line1\r\n--not-a-boundary\r\n\x00\xff";
        let (ct, body) = encode_file("a.bin", data);
        let b = boundary(&ct).unwrap();
        let parts = parse(&body, &b).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name, "file");
        assert_eq!(parts[0].filename.as_deref(), Some("a.bin"));
        assert_eq!(parts[0].data, data);
    }

    #[test]
    fn malformed_is_none() {
        assert!(parse(b"garbage", "x").is_none());
        assert!(parse(b"--x\r\nno-headers-end", "x").is_none());
        assert!(boundary("application/json").is_none());
        assert!(boundary("multipart/form-data").is_none());
    }
}
