//! Reads an NDJSON request body (`/v1/enrol/bulk`, `/v1/batch`) one line at a time, in time
//! and memory linear in the body, whatever the chunks it arrives in.
//!
//! Lines are cut by tokio-util's [`LinesCodec`], which resumes its search for a newline where
//! the previous one stopped and takes each line off the front of the buffer without copying
//! the rest. A line longer than the limit is reported once, as it starts to overflow, and all
//! of it — head and tail, across any number of chunks — is skipped up to its newline: nothing of
//! it is acted on. The body as a whole is bounded too ([`STREAM_BODY_BYTES_MAX`]), and so is
//! the wait for its next chunk ([`STREAM_BODY_IDLE_TIMEOUT`]). Memory held: one line and one
//! chunk.

use axum::body::{Body as HttpBody, BodyDataStream, Bytes};
use bytes::BytesMut;
use futures::StreamExt;
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

use axum::http::{HeaderMap, StatusCode, header};

use super::{ApiError, ApiResult, STREAM_BODY_BYTES_MAX, STREAM_BODY_IDLE_TIMEOUT};

/// One line of the body that is not blank, numbered from 1 (blank lines count).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// A line with something on it (without its `\n` or `\r\n`).
    Text { number: u64, text: String },
    /// Longer than the limit; none of it was kept.
    TooLong { number: u64 },
    /// Not UTF-8 (so not JSON); none of it was kept.
    NotUtf8 { number: u64 },
}

/// Why the body could not be read to its end.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BodyError {
    /// The upload failed (the client went away, or sent broken chunked encoding).
    BrokeOff(String),
    /// The body passed [`STREAM_BODY_BYTES_MAX`].
    TooLarge,
    /// No byte arrived for [`STREAM_BODY_IDLE_TIMEOUT`].
    Idle,
}

impl BodyError {
    /// The answer line reporting it (`{"error", "message"}`), with a stable name.
    pub(super) fn json(&self) -> serde_json::Value {
        let (error, message) = match self {
            BodyError::BrokeOff(e) => ("bad_body", format!("request body broke off: {e}")),
            BodyError::TooLarge => (
                "body_too_large",
                format!(
                    "request body passed {STREAM_BODY_BYTES_MAX} bytes; send the rest in another request"
                ),
            ),
            BodyError::Idle => (
                "body_timeout",
                format!(
                    "no part of the request body arrived for {} s",
                    STREAM_BODY_IDLE_TIMEOUT.as_secs()
                ),
            ),
        };
        serde_json::json!({"error": error, "message": message})
    }
}

/// A line's number and `parse(text)`, or the error it gets (`line_too_long`, or `bad_json`
/// for one that is not UTF-8).
pub(super) fn parse_line<T>(
    line: Line,
    line_bytes_max: usize,
    parse: impl FnOnce(&str) -> ApiResult<T>,
) -> (u64, ApiResult<T>) {
    match line {
        Line::Text { number, text } => (number, parse(&text)),
        Line::TooLong { number } => (
            number,
            Err(ApiError::bad(
                "line_too_long",
                format!("line is longer than {line_bytes_max} bytes; none of it was read"),
            )),
        ),
        Line::NotUtf8 { number } => (
            number,
            Err(ApiError::bad("bad_json", "line is not UTF-8, so not JSON")),
        ),
    }
}

/// `413 body_too_large` for a streamed body whose declared length is over
/// [`STREAM_BODY_BYTES_MAX`], before any of it is read.
pub(super) fn declared_too_large(headers: &HeaderMap) -> Option<ApiError> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())?;
    (length > STREAM_BODY_BYTES_MAX as u64).then(|| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "request body is {length} bytes; at most {STREAM_BODY_BYTES_MAX} in one request"
            ),
        )
    })
}

/// The lines of a streamed body.
pub(super) struct Lines<S> {
    chunks: S,
    codec: LinesCodec,
    buffer: BytesMut,
    /// Lines returned so far.
    number: u64,
    /// Body bytes received so far.
    received: usize,
    body_bytes_max: usize,
    ended: bool,
}

impl Lines<BodyDataStream> {
    /// The lines of a request body, each at most `line_bytes_max` bytes.
    pub(super) fn of_body(body: HttpBody, line_bytes_max: usize) -> Self {
        Lines::new(
            body.into_data_stream(),
            line_bytes_max,
            STREAM_BODY_BYTES_MAX,
        )
    }
}

impl<S, E> Lines<S>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    /// The lines of `chunks`, each at most `line_bytes_max` bytes, in all at most
    /// `body_bytes_max` bytes.
    pub(super) fn new(chunks: S, line_bytes_max: usize, body_bytes_max: usize) -> Self {
        Lines {
            chunks,
            codec: LinesCodec::new_with_max_length(line_bytes_max),
            buffer: BytesMut::new(),
            number: 0,
            received: 0,
            body_bytes_max,
            ended: false,
        }
    }

    /// Lines read so far (the total, once [`Lines::next`] returned `Ok(None)`).
    pub(super) fn count(&self) -> u64 {
        self.number
    }

    /// The next line that is not blank (empty or whitespace; counted, not returned), or
    /// `None` at the end of the body. A last line without its newline is a line.
    pub(super) async fn next(&mut self) -> Result<Option<Line>, BodyError> {
        loop {
            if let Some(line) = self.next_buffered() {
                return Ok(line);
            }
            let chunk = tokio::time::timeout(STREAM_BODY_IDLE_TIMEOUT, self.chunks.next())
                .await
                .map_err(|_| BodyError::Idle)?;
            match chunk {
                Some(Ok(chunk)) => {
                    self.received += chunk.len();
                    if self.received > self.body_bytes_max {
                        return Err(BodyError::TooLarge);
                    }
                    self.buffer.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Err(BodyError::BrokeOff(e.to_string())),
                None => self.ended = true,
            }
        }
    }

    /// The next line that is not blank from what has arrived: `Some(None)` at the end of the
    /// body, `None` if more is needed ("not enough bytes yet" is a state, not an error).
    fn next_buffered(&mut self) -> Option<Option<Line>> {
        loop {
            let decoded = if self.ended {
                self.codec.decode_eof(&mut self.buffer)
            } else {
                self.codec.decode(&mut self.buffer)
            };
            let number = self.number + 1;
            match decoded {
                Ok(Some(text)) => {
                    self.number = number;
                    // `is_empty` first: blank lines are the cheap case, even in a debug build.
                    if !(text.is_empty() || text.trim().is_empty()) {
                        return Some(Some(Line::Text { number, text }));
                    }
                }
                // The codec now skips the rest of this line, whatever chunks it comes in.
                Err(LinesCodecError::MaxLineLengthExceeded) => {
                    self.number = number;
                    return Some(Some(Line::TooLong { number }));
                }
                // The codec has taken the line off the buffer before finding it is not UTF-8.
                Err(LinesCodecError::Io(_)) => {
                    self.number = number;
                    return Some(Some(Line::NotUtf8 { number }));
                }
                Ok(None) if self.ended => return Some(None),
                Ok(None) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of a body sent in `chunks`.
    async fn all_lines(
        chunks: Vec<&[u8]>,
        line_bytes_max: usize,
        body_bytes_max: usize,
    ) -> (Vec<Line>, Option<BodyError>) {
        let (lines, _, error) = read_all(chunks, line_bytes_max, body_bytes_max).await;
        (lines, error)
    }

    /// Every line of a body sent in `chunks`, and the count of lines, blank ones included.
    async fn read_all(
        chunks: Vec<&[u8]>,
        line_bytes_max: usize,
        body_bytes_max: usize,
    ) -> (Vec<Line>, u64, Option<BodyError>) {
        let stream = futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        let mut lines = Lines::new(stream, line_bytes_max, body_bytes_max);
        let mut out = Vec::new();
        loop {
            match lines.next().await {
                Ok(Some(line)) => out.push(line),
                Ok(None) => return (out, lines.count(), None),
                Err(e) => return (out, lines.count(), Some(e)),
            }
        }
    }

    fn text(number: u64, text: &str) -> Line {
        Line::Text {
            number,
            text: text.to_string(),
        }
    }

    #[tokio::test]
    async fn a_line_split_across_chunks_is_one_line() {
        let (lines, error) = all_lines(
            vec![
                b"{\"person\": \"3101",
                b"04199207040021\"}\n\r\n  \n{\"a\"",
                b": 1}",
            ],
            64,
            1024,
        )
        .await;
        assert_eq!(
            lines,
            vec![
                text(1, "{\"person\": \"310104199207040021\"}"),
                text(4, "{\"a\": 1}"),
            ]
        );
        assert_eq!(error, None);
    }

    #[tokio::test]
    async fn an_over_long_line_is_refused_whole_across_chunks() {
        // 20 bytes allowed; line 2 is 40 bytes in three chunks, the newline in the last.
        let (lines, error) = all_lines(
            vec![
                b"short\n0123456789",
                b"0123456789012345",
                b"67890123456789\nafter\nxxxxxxxxxxxxxxxxxxxxxxxxx",
            ],
            20,
            1024,
        )
        .await;
        assert_eq!(
            lines,
            vec![
                text(1, "short"),
                Line::TooLong { number: 2 },
                text(3, "after"),
                Line::TooLong { number: 4 },
            ]
        );
        assert_eq!(error, None);
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_kept() {
        let (lines, _) = all_lines(vec![b"01234567890123456789\n0123"], 20, 1024).await;
        assert_eq!(
            lines,
            vec![text(1, "01234567890123456789"), text(2, "0123")]
        );
    }

    #[tokio::test]
    async fn a_line_that_is_not_utf8_is_reported_and_the_next_read() {
        let (lines, _) = all_lines(vec![b"ok\n\xff\xfe\nnext\n"], 20, 1024).await;
        assert_eq!(
            lines,
            vec![text(1, "ok"), Line::NotUtf8 { number: 2 }, text(3, "next")]
        );
    }

    #[tokio::test]
    async fn a_body_over_its_limit_stops_the_reading() {
        let (lines, error) = all_lines(vec![b"a\nb\n", b"c\nd\n"], 20, 6).await;
        assert_eq!(lines, vec![text(1, "a"), text(2, "b")]);
        assert_eq!(error, Some(BodyError::TooLarge));
    }

    #[tokio::test]
    async fn four_mebibytes_of_blank_lines_take_linear_time() {
        let mut body = vec![b'\n'; 4 << 20];
        body.extend_from_slice(b"last");
        let started = std::time::Instant::now();
        let (lines, count, error) = read_all(body.chunks(16 * 1024).collect(), 4096, 8 << 20).await;
        assert_eq!(error, None);
        assert_eq!(count, (4 << 20) + 1);
        assert_eq!(lines, vec![text((4 << 20) + 1, "last")]);
        // Quadratic splitting took about 20 s of CPU; linear takes under 0.2 s here, even in a
        // debug build (the codec is optimised; the loop over blank lines is not async).
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}
