//! Video: frames at `(i + phase) / fps` seconds, the frame on screen at that time (the last one
//! whose timestamp is not after it), converted (swscale: RGB, short side resized) only when
//! selected, and rotated as the stream's display matrix says (as `ffmpeg` autorotates).

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{Context as Scaler, Flags};
use ffmpeg::codec::discard::Discard;
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
            let m: Vec<f64> = sd.data()[..8]
                .chunks_exact(4)
                .map(|c| f64::from(i32::from_ne_bytes([c[0], c[1], c[2], c[3]])) / 65536.0)
                .collect();
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

struct Converter {
    scaler: Option<(Scaler, (Pixel, u32, u32))>,
    short_side: u32,
    rotation: u32,
}

impl Converter {
    fn convert(&mut self, f: &frame::Video) -> Result<RgbImage, DecodeError> {
        let key = (f.format(), f.width(), f.height());
        if self.scaler.as_ref().is_none_or(|(_, k)| *k != key) {
            let (w, h) = scaled_size(key.1, key.2, self.short_side);
            let s = Scaler::get(key.0, key.1, key.2, Pixel::RGB24, w, h, Flags::BILINEAR).map_err(ff("creating the scaler"))?;
            self.scaler = Some((s, key));
        }
        let (scaler, _) = self.scaler.as_mut().expect("set above");
        let mut rgb = frame::Video::empty();
        scaler.run(f, &mut rgb).map_err(ff("scaling"))?;
        let (w, h, stride) = (rgb.width(), rgb.height(), rgb.stride(0));
        let data = rgb.data(0);
        let mut pixels = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h as usize {
            pixels.extend_from_slice(&data[y * stride..y * stride + w as usize * 3]);
        }
        let img = RgbImage::from_raw(w, h, pixels).expect("buffer matches dimensions");
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
        let ts = f.timestamp().or(f.pts()).map_or_else(
            || self.previous.as_ref().map_or(0.0, |(t, _)| t + self.frame_interval),
            |t| (t - self.start) as f64 * self.tb,
        );
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
            .and_then(|c| c.decoder().video())
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
            conv: Converter { scaler: None, short_side, rotation },
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
