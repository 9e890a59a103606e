//! Video: frames at `(i + phase) / fps` seconds, the frame on screen at that time (the last one
//! whose timestamp is not after it), converted (swscale: RGB, short side resized) only when
//! selected, and rotated as the stream's display matrix says (as `ffmpeg` autorotates).

use std::path::Path;

use ffmpeg::codec::discard::Discard;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{Context as Scaler, Flags};
use ffmpeg::{codec, format, frame, media};
use ffmpeg_next as ffmpeg;
use image::RgbImage;

use super::gate::{PacketGate, PacketTimes, Step, Targets};
use super::{ff, open_input, DecodeError};

/// Which frames to take.
#[derive(Debug, Clone, Copy)]
pub struct FramePlan {
    pub fps: f64,
    pub phase: f64,
    pub max_frames: usize,
    /// Keep the decoder off packets that cannot change what is selected (`gate.rs`: packets
    /// before a keyframe that supersedes them, non-reference frames another frame supersedes).
    pub skip_unneeded: bool,
    /// Threads the video decoder may use: 1 decodes on the caller's thread, more use FFmpeg's
    /// frame threading (the same frames, bit for bit, sooner, at a little more CPU).
    pub threads: usize,
}

/// What the source video is.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// The container's average rate; else estimated from the packets read (`None` for a single
    /// frame or no timestamps).
    pub fps: Option<f64>,
    /// Container (or stream) duration; `None` when the file does not say.
    pub duration_s: Option<f64>,
    /// Clockwise rotation applied to the frames, degrees (0, 90, 180, 270).
    pub rotation: u32,
    /// Packets of the stream the decoder rejected (corrupt or truncated data).
    pub packet_errors: usize,
}

/// One selected frame: its timestamp and the image as displayed.
#[derive(Debug, Clone)]
pub struct SampledFrame {
    pub time_s: f64,
    pub image: RgbImage,
}

const MAX_PIXELS: u64 = 16384 * 16384;

fn rotation(stream: &format::stream::Stream) -> u32 {
    for sd in stream.side_data() {
        if sd.kind() == codec::packet::side_data::Type::DisplayMatrix && sd.data().len() >= 36 {
            let m: Vec<f64> = sd.data()[..8].chunks_exact(4).map(|c| f64::from(i32::from_ne_bytes([c[0], c[1], c[2], c[3]])) / 65536.0).collect();
            let degrees = m[1].atan2(m[0]).to_degrees();
            return ((degrees / 90.0).round() as i64).rem_euclid(4) as u32 * 90;
        }
    }
    0
}

/// Output size with the shorter side `short_side`, aspect kept (rounded, even sizes not needed).
pub fn scaled_size(width: u32, height: u32, short_side: u32) -> (u32, u32) {
    let (w, h) = (f64::from(width), f64::from(height));
    let s = f64::from(short_side) / w.min(h);
    (((w * s).round() as u32).max(1), ((h * s).round() as u32).max(1))
}

/// BT.601 YCbCr to RGB in fixed point, 13 fractional bits: swscale's default table
/// (`ff_yuv2rgb_coeffs[SWS_CS_DEFAULT]`, 16 fractional bits), scaled for the range as
/// `ff_yuv2rgb_c_init_tables` does. The matrix the original pipeline's colours come from too: its
/// JPEGs keep the decoded YCbCr and PIL reads them as BT.601 whatever the stream is tagged.
/// 16-bit coefficients so that products of 16-bit operands fit 32 bits: SSE2's multiply-add (the
/// baseline x86-64 target has no 32-bit vector multiply).
#[derive(Debug, Clone, Copy)]
struct Bt601 {
    y: i16,
    y_offset: i16,
    v_r: i16,
    u_g: i16,
    v_g: i16,
    u_b: i16,
}

impl Bt601 {
    /// From swscale's 16-bit coefficients.
    const fn from_q16(y: i32, y_offset: i16, [v_r, u_g, v_g, u_b]: [i32; 4]) -> Self {
        Self { y: (y >> 3) as i16, y_offset, v_r: (v_r >> 3) as i16, u_g: (u_g >> 3) as i16, v_g: (v_g >> 3) as i16, u_b: (u_b >> 3) as i16 }
    }
    const LIMITED: Self = Self::from_q16((1 << 16) * 255 / 219, 16, [104597, 25675, 53279, 132201]);
    const FULL: Self = Self::from_q16(1 << 16, 0, [104597 * 224 / 255, 25675 * 224 / 255, 53279 * 224 / 255, 132201 * 224 / 255]);

    /// 16 pixels: computed as planes (vectorised), then interleaved.
    #[inline(always)]
    fn block(&self, y: &[u8; 16], u: &[u8; 16], v: &[u8; 16]) -> [u8; 48] {
        let mul = |a: i16, b: i16| i32::from(a) * i32::from(b);
        let clip = |x: i32| (x >> 13).clamp(0, 255) as u8;
        let (mut r, mut g, mut b) = ([0u8; 16], [0u8; 16], [0u8; 16]);
        for i in 0..16 {
            let l = mul(i16::from(y[i]) - self.y_offset, self.y) + (1 << 12);
            let (cb, cr) = (i16::from(u[i]) - 128, i16::from(v[i]) - 128);
            r[i] = clip(l + mul(self.v_r, cr));
            g[i] = clip(l - mul(self.u_g, cb) - mul(self.v_g, cr));
            b[i] = clip(l + mul(self.u_b, cb));
        }
        let mut out = [0u8; 48];
        for i in 0..16 {
            out[3 * i] = r[i];
            out[3 * i + 1] = g[i];
            out[3 * i + 2] = b[i];
        }
        out
    }

    /// One row of full-resolution Y, Cb, Cr (`rgb.len() / 3` pixels) to packed RGB.
    fn row(&self, y: &[u8], u: &[u8], v: &[u8], rgb: &mut [u8]) {
        let w = rgb.len() / 3;
        let (y, u, v) = (&y[..w], &u[..w], &v[..w]);
        let mut out = rgb.chunks_exact_mut(48);
        for (((y, u), v), out) in y.chunks_exact(16).zip(u.chunks_exact(16)).zip(v.chunks_exact(16)).zip(&mut out) {
            let px = self.block(y.try_into().expect("16"), u.try_into().expect("16"), v.try_into().expect("16"));
            out.copy_from_slice(&px);
        }
        // The last pixels, padded to a block.
        let rest = w % 16;
        if rest > 0 {
            let pad = |p: &[u8]| {
                let mut a = [128u8; 16];
                a[..rest].copy_from_slice(&p[w - rest..]);
                a
            };
            let px = self.block(&pad(y), &pad(u), &pad(v));
            out.into_remainder().copy_from_slice(&px[..rest * 3]);
        }
    }
}

/// How a decoded frame becomes a scaled RGB image.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    /// 8-bit planar YCbCr: swscale scales it to 4:4:4 at the output size (its vectorised
    /// paths), then [`Bt601`] makes RGB. Computes what `Direct` does (the same filters, the same
    /// matrix) with the planes rounded to 8 bits in between: within 2 levels of it
    /// (`planar_route_matches_swscale_rgb`), in less than half the time (swscale's RGB output
    /// after a scale is scalar C).
    Planar { full_range: bool },
    /// Anything else (10-bit, semi-planar, RGB, palette, grey): swscale straight to RGB24.
    Direct,
}

impl Route {
    fn of(format: Pixel) -> Self {
        use Pixel::*;
        match format {
            YUV420P | YUV422P | YUV444P | YUV440P | YUVA420P | YUVA422P | YUVA444P => Self::Planar { full_range: false },
            YUVJ420P | YUVJ422P | YUVJ444P | YUVJ440P => Self::Planar { full_range: true },
            _ => Self::Direct,
        }
    }

    /// Bilinear; chroma always at the output's full resolution (swscale would otherwise give
    /// two RGB pixels of an even-width output one chroma sample).
    fn flags(self) -> Flags {
        match self {
            Self::Planar { .. } => Flags::BILINEAR,
            Self::Direct => Flags::BILINEAR | Flags::FULL_CHR_H_INT,
        }
    }

    fn output(self) -> Pixel {
        match self {
            Self::Planar { full_range: false } => Pixel::YUV444P,
            Self::Planar { full_range: true } => Pixel::YUVJ444P,
            Self::Direct => Pixel::RGB24,
        }
    }
}

struct Converter {
    scaler: Option<(Scaler, Route, (Pixel, u32, u32))>,
    short_side: u32,
    rotation: u32,
    /// Always [`Route::Direct`] (for comparing the routes).
    direct_only: bool,
}

impl Converter {
    fn new(short_side: u32, rotation: u32) -> Self {
        Self { scaler: None, short_side, rotation, direct_only: false }
    }

    fn convert(&mut self, f: &frame::Video) -> Result<RgbImage, DecodeError> {
        let key = (f.format(), f.width(), f.height());
        if self.scaler.as_ref().is_none_or(|(_, _, k)| *k != key) {
            let (w, h) = scaled_size(key.1, key.2, self.short_side);
            let route = if self.direct_only { Route::Direct } else { Route::of(key.0) };
            let s = Scaler::get(key.0, key.1, key.2, route.output(), w, h, route.flags()).map_err(ff("creating the scaler"))?;
            self.scaler = Some((s, route, key));
        }
        let (scaler, route, _) = self.scaler.as_mut().expect("set above");
        let mut out = frame::Video::empty();
        scaler.run(f, &mut out).map_err(ff("scaling"))?;
        let (w, h) = (out.width() as usize, out.height() as usize);
        let mut pixels = vec![0u8; w * h * 3];
        let rows = pixels.chunks_exact_mut(w * 3).enumerate();
        match *route {
            Route::Direct => {
                let (data, stride) = (out.data(0), out.stride(0));
                for (y, row) in rows {
                    row.copy_from_slice(&data[y * stride..][..w * 3]);
                }
            }
            Route::Planar { full_range } => {
                let m = if full_range { Bt601::FULL } else { Bt601::LIMITED };
                let plane = |i: usize, y: usize| &out.data(i)[y * out.stride(i)..][..w];
                for (y, row) in rows {
                    m.row(plane(0, y), plane(1, y), plane(2, y), row);
                }
            }
        }
        let img = RgbImage::from_raw(w as u32, h as u32, pixels).expect("buffer matches dimensions");
        Ok(match self.rotation {
            90 => image::imageops::rotate90(&img),
            180 => image::imageops::rotate180(&img),
            270 => image::imageops::rotate270(&img),
            _ => img,
        })
    }
}

/// The selection while a stream is decoded.
struct Sampler {
    targets: Targets,
    conv: Converter,
    selected: Vec<SampledFrame>,
    /// The last decoded frame and its time: the candidate for every target not yet passed.
    previous: Option<(f64, frame::Video)>,
    /// Packets the decoder rejected (corrupt or truncated data).
    errors: usize,
    /// Whether the decoder is told to skip non-reference frames.
    skipping: bool,
    start: i64,
    tb: f64,
    frame_interval: f64,
}

impl Sampler {
    fn done(&self) -> bool {
        self.selected.len() >= self.targets.count
    }

    /// A decoded frame: it selects the previous one for every target it is past.
    fn handle(&mut self, f: frame::Video) -> Result<(), DecodeError> {
        let ts = f
            .timestamp()
            .or(f.pts())
            .map_or_else(|| self.previous.as_ref().map_or(0.0, |(t, _)| t + self.frame_interval), |t| (t - self.start) as f64 * self.tb);
        // Non-monotonic timestamps: never go back in time.
        let ts = self.previous.as_ref().map_or(ts, |(t, _)| ts.max(*t));
        while !self.done() && ts > self.targets.at(self.selected.len()) {
            let (t, img) = match self.previous.as_ref() {
                Some((t, p)) => (*t, self.conv.convert(p)?),
                None => (ts, self.conv.convert(&f)?),
            };
            self.selected.push(SampledFrame { time_s: t, image: img });
        }
        self.previous = Some((ts, f));
        Ok(())
    }

    /// Takes every frame the decoder has ready.
    fn receive(&mut self, decoder: &mut ffmpeg::decoder::Video) -> Result<(), DecodeError> {
        loop {
            let mut f = frame::Video::empty();
            if decoder.receive_frame(&mut f).is_err() {
                return Ok(());
            }
            self.handle(f)?;
        }
    }

    /// Sends one packet (`skippable`: the decoder may skip it unless other frames refer to it)
    /// and takes the frames it yields; a rejected packet is counted.
    fn feed(&mut self, decoder: &mut ffmpeg::decoder::Video, packet: &ffmpeg::Packet, skippable: bool) -> Result<(), DecodeError> {
        if skippable != self.skipping {
            decoder.skip_frame(if skippable { Discard::NonReference } else { Discard::Default });
            self.skipping = skippable;
        }
        if decoder.send_packet(packet).is_err() {
            self.errors += 1;
            return Ok(());
        }
        self.receive(decoder)
    }

    fn step(&mut self, decoder: &mut ffmpeg::decoder::Video, step: Step<ffmpeg::Packet>) -> Result<(), DecodeError> {
        match step {
            Step::Decode { packet, skippable } => self.feed(decoder, &packet, skippable),
            Step::Restart => {
                // As for a seek: what was sent comes out, then the decoder starts afresh.
                let _ = decoder.send_eof();
                self.receive(decoder)?;
                decoder.flush();
                Ok(())
            }
        }
    }
}

/// The best video stream of an open file, sampled as its packets are read.
pub(crate) struct VideoTrack {
    index: usize,
    decoder: ffmpeg::decoder::Video,
    skip_unneeded: bool,
    sampler: Sampler,
    gate: PacketGate<ffmpeg::Packet>,
    info: VideoInfo,
    /// Presentation times seen (first, last, count): the frame rate when the container has none.
    span: Option<(f64, f64, usize)>,
    /// Every packet that can be shown at or before the last target went to the decoder.
    settled: bool,
}

impl VideoTrack {
    /// Opens the decoder of `ictx`'s best video stream and plans the targets.
    pub(crate) fn open(ictx: &format::context::Input, plan: &FramePlan, short_side: u32) -> Result<Self, DecodeError> {
        let stream = ictx.streams().best(media::Type::Video).ok_or(DecodeError::NoVideoStream)?;
        let tb = f64::from(stream.time_base());
        let start = if stream.start_time() == ffmpeg::ffi::AV_NOPTS_VALUE { 0 } else { stream.start_time() };
        let rate = stream.avg_frame_rate();
        let fps = (rate.denominator() != 0 && rate.numerator() > 0).then(|| f64::from(rate));
        let duration_s = if ictx.duration() > 0 {
            Some(ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE))
        } else if stream.duration() > 0 {
            Some(stream.duration() as f64 * tb)
        } else {
            None
        };
        let rotation = rotation(&stream);
        let decoder = codec::context::Context::from_parameters(stream.parameters())
            .and_then(|mut c| {
                if plan.threads > 1 {
                    c.set_threading(codec::threading::Config { kind: codec::threading::Type::Frame, count: plan.threads, ..Default::default() });
                }
                c.decoder().video()
            })
            .map_err(ff("opening the video decoder"))?;
        let (width, height) = (decoder.width(), decoder.height());
        if width == 0 || height == 0 || u64::from(width) * u64::from(height) > MAX_PIXELS {
            return Err(DecodeError::AbsurdDimensions { width, height });
        }
        // Targets inside the duration (at least one: a clip shorter than the phase shows its
        // first frame); all of `max_frames` when the file does not say how long it is.
        let inside = duration_s.map_or(plan.max_frames, |d| (0..plan.max_frames).take_while(|&i| i == 0 || (i as f64 + plan.phase) / plan.fps < d).count());
        let targets = Targets { fps: plan.fps, phase: plan.phase, count: inside };
        let sampler = Sampler {
            targets,
            conv: Converter::new(short_side, rotation),
            selected: Vec::new(),
            previous: None,
            errors: 0,
            skipping: false,
            start,
            tb,
            frame_interval: 1.0 / fps.unwrap_or(25.0),
        };
        Ok(Self {
            index: stream.index(),
            decoder,
            skip_unneeded: plan.skip_unneeded,
            sampler,
            gate: PacketGate::new(targets),
            info: VideoInfo { width, height, fps, duration_s, rotation, packet_errors: 0 },
            span: None,
            settled: false,
        })
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Whether more packets can change what is selected: not once everything selectable is
    /// selected or on its way.
    pub(crate) fn wants(&self) -> bool {
        !(self.sampler.done() || self.settled)
    }

    /// Takes one packet of the stream: to the gate, or straight to the decoder.
    pub(crate) fn push(&mut self, packet: ffmpeg::Packet) -> Result<(), DecodeError> {
        let (start, tb) = (self.sampler.start, self.sampler.tb);
        let seconds = |t: Option<i64>| t.map(|t| (t - start) as f64 * tb);
        let pts = seconds(packet.pts());
        if let Some(t) = pts {
            self.span = Some(self.span.map_or((t, t, 1), |(a, b, n)| (a.min(t), b.max(t), n + 1)));
        }
        if self.skip_unneeded {
            let times = PacketTimes { pts, dts: seconds(packet.dts()), key: packet.is_key() };
            self.gate.push(times, packet);
            while let Some(step) = self.gate.pop(false) {
                self.sampler.step(&mut self.decoder, step)?;
            }
            self.settled = self.gate.settled();
            Ok(())
        } else {
            self.sampler.feed(&mut self.decoder, &packet, false)
        }
    }

    /// The frames selected, after what the gate and the decoder still hold.
    pub(crate) fn finish(self) -> Result<(VideoInfo, Vec<SampledFrame>), DecodeError> {
        let Self { mut decoder, mut sampler, mut gate, mut info, span, settled, .. } = self;
        if !sampler.done() {
            if !settled {
                // Targets past the last packet show the last frame: decode what is still waiting.
                while let Some(step) = gate.pop(true) {
                    sampler.step(&mut decoder, step)?;
                }
            }
            let _ = decoder.send_eof();
            sampler.receive(&mut decoder)?;
        }
        let Sampler { targets, mut conv, mut selected, previous, errors, frame_interval, .. } = sampler;
        let Some((last_t, last)) = previous else { return Err(DecodeError::NoVideoFrames { errors }) };
        // Targets after the last frame but inside the video's duration show the last frame; once
        // settled, the last frame decoded is the one on screen at every target left.
        let end = info.duration_s.unwrap_or(last_t + frame_interval).max(last_t);
        let unfilled = |selected: &Vec<SampledFrame>| selected.len() < targets.count && (settled || selected.is_empty() || targets.at(selected.len()) < end);
        if unfilled(&selected) {
            let img = conv.convert(&last)?;
            while unfilled(&selected) {
                selected.push(SampledFrame { time_s: last_t, image: img.clone() });
            }
        }
        info.packet_errors = errors;
        if info.fps.is_none() {
            info.fps = span.and_then(|(a, b, n)| (n > 1 && b > a).then(|| (n - 1) as f64 / (b - a)));
        }
        Ok((info, selected))
    }
}

/// Decodes the best video stream of `path` and returns the frames `plan` selects.
pub fn sample_frames(path: &Path, plan: &FramePlan, short_side: u32) -> Result<(VideoInfo, Vec<SampledFrame>), DecodeError> {
    let mut ictx = open_input(path)?;
    let mut track = Ok(VideoTrack::open(&ictx, plan, short_side)?);
    super::feed(&mut ictx, None, Some(&mut track))?;
    track?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `plan` selects from `path` (short side 256), and the pixel format of the frames.
    fn frames(path: &Path, plan: &FramePlan, direct_only: bool) -> Option<(Pixel, VideoInfo, Vec<SampledFrame>)> {
        let mut ictx = open_input(path).ok()?;
        let mut track = VideoTrack::open(&ictx, plan, 256).ok()?;
        track.sampler.conv.direct_only = direct_only;
        let mut slot = Ok(track);
        super::super::feed(&mut ictx, None, Some(&mut slot)).ok()?;
        let track = slot.ok()?;
        let format = track.sampler.conv.scaler.as_ref().map(|(_, _, (f, _, _))| *f)?;
        track.finish().ok().map(|(info, f)| (format, info, f))
    }

    /// The planar route (swscale to 4:4:4, then our BT.601 matrix) against swscale's own RGB
    /// conversion of the same frames (its C `yuv2rgb24_full_X`: same filters, its matrix, no
    /// 8-bit rounding in between), on every shared file with a video stream: at most 2 levels
    /// apart, 0.43 on average at most (measured: 0.005-0.43). Not compared: a frame already at
    /// the output size, which swscale converts without scaling and with each chroma sample
    /// repeated (kinetics_demo_noaudio.mp4, 340x256: up to 37 levels apart at colour edges,
    /// where the planar route interpolates chroma as it does when scaling; video_90.mov).
    #[test]
    fn planar_route_matches_swscale_rgb() {
        let plan = FramePlan { fps: 1.0, phase: 0.5, max_frames: 3, skip_unneeded: true, threads: 1 };
        let mut compared = Vec::new();
        for path in super::super::tests::shared_media() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some((format, info, planar)) = frames(&path, &plan, false) else { continue };
            let (_, _, direct) = frames(&path, &plan, true).unwrap();
            assert_eq!(planar.len(), direct.len(), "{name}");
            let (w, h) = planar[0].image.dimensions();
            let unscaled = [(w, h), (h, w)].contains(&(info.width, info.height));
            if !matches!(Route::of(format), Route::Planar { .. }) || unscaled {
                continue;
            }
            let (mut max, mut sum, mut n) = (0u8, 0u64, 0usize);
            for (a, b) in planar.iter().zip(&direct) {
                assert_eq!(a.time_s, b.time_s, "{name}");
                assert_eq!(a.image.dimensions(), b.image.dimensions(), "{name}");
                for (x, y) in a.image.as_raw().iter().zip(b.image.as_raw()) {
                    max = max.max(x.abs_diff(*y));
                    sum += u64::from(x.abs_diff(*y));
                    n += 1;
                }
            }
            let mad = sum as f64 / n as f64;
            println!("{name}: {format:?} {w}x{h}, max {max}, mean {mad:.3}");
            assert!(max <= 2 && mad <= 0.45, "{name}: max {max}, mean {mad:.3}");
            compared.push(name);
        }
        // Every shared file with video (all 4:2:0) but the two already at the output size.
        assert!(compared.len() >= 18, "{compared:?}");
    }

    /// The matrix on known colours: limited-range black, white and the BT.601 primaries, and
    /// their full-range (JPEG) counterparts, to the RGB any BT.601 decoder gives.
    #[test]
    fn bt601_maps_reference_colours() {
        // (Y, Cb, Cr) -> RGB; limited range from ITU-R BT.601's 75%-free primaries, full range
        // from JFIF.
        let cases: [(Bt601, [u8; 3], [u8; 3]); 8] = [
            (Bt601::LIMITED, [16, 128, 128], [0, 0, 0]),
            (Bt601::LIMITED, [235, 128, 128], [255, 255, 255]),
            (Bt601::LIMITED, [81, 90, 240], [255, 0, 0]),
            (Bt601::LIMITED, [145, 54, 34], [0, 255, 0]),
            (Bt601::LIMITED, [41, 240, 110], [0, 0, 255]),
            (Bt601::FULL, [0, 128, 128], [0, 0, 0]),
            (Bt601::FULL, [255, 128, 128], [255, 255, 255]),
            (Bt601::FULL, [76, 85, 255], [254, 0, 0]),
        ];
        for (m, [y, u, v], want) in cases {
            // 20 pixels: a full block of 16 and a padded rest.
            let mut rgb = [0u8; 60];
            m.row(&[y; 20], &[u; 20], &[v; 20], &mut rgb);
            for px in rgb.chunks_exact(3) {
                let err = px.iter().zip(want).map(|(a, b)| a.abs_diff(b)).max().unwrap();
                assert!(err <= 2, "{m:?} {y} {u} {v}: {px:?}, want {want:?}");
            }
        }
    }
}
