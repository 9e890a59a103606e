//! Audio: the best audio stream, resampled with swresample to the preset's rate (channels kept),
//! then downmixed to mono as the arithmetic mean of the channels (librosa's `mono=True`; FFmpeg's
//! own downmix matrix would scale by 1/sqrt(2) instead, see design.md).

use std::path::Path;

use ffmpeg::format::sample::{Sample, Type as SampleType};
use ffmpeg::util::channel_layout::ChannelLayout;
use ffmpeg::{codec, format, frame, media, software::resampling};
use ffmpeg_next as ffmpeg;

use super::{ff, open_input, DecodeError};

/// A mono waveform and what the source was.
#[derive(Debug, Clone)]
pub struct DecodedAudio {
    pub samples: Vec<f32>,
    pub rate: u32,
    pub source_rate: u32,
    pub source_channels: u32,
    /// Decoded length in seconds (at `rate`).
    pub duration_s: f64,
    /// Packets of the stream the decoder rejected (corrupt or truncated data).
    pub packet_errors: usize,
}

struct Downmixer {
    resampler: Option<(resampling::Context, (Sample, ChannelLayout, u32))>,
    /// The output rate: the preset's, else the first decoded frame's.
    rate: Option<u32>,
    out: Vec<f32>,
}

impl Downmixer {
    fn push_resampled(&mut self, o: &frame::Audio) {
        let channels = o.channels().max(1) as usize;
        let n = o.samples();
        let bytes = &o.data(0)[..n * channels * 4];
        let inv = 1.0 / channels as f32;
        self.out.extend(bytes.chunks_exact(4 * channels).map(|c| c.chunks_exact(4).map(|s| f32::from_ne_bytes([s[0], s[1], s[2], s[3]])).sum::<f32>() * inv));
    }

    fn push(&mut self, f: &mut frame::Audio) -> Result<(), DecodeError> {
        let layout = if f.channel_layout().is_empty() { ChannelLayout::default(i32::from(f.channels())) } else { f.channel_layout() };
        let key = (f.format(), layout, f.rate());
        let rate = *self.rate.get_or_insert(f.rate());
        if self.resampler.as_ref().is_none_or(|(_, k)| *k != key) {
            self.flush()?;
            let ctx = resampling::Context::get(key.0, layout, key.2, Sample::F32(SampleType::Packed), layout, rate).map_err(ff("creating the resampler"))?;
            self.resampler = Some((ctx, key));
        }
        // Decoders that leave the layout empty (PCM WAV) get the default one for their channels.
        f.set_channel_layout(layout);
        let mut o = frame::Audio::empty();
        let (r, _) = self.resampler.as_mut().expect("set above");
        r.run(f, &mut o).map_err(ff("resampling"))?;
        self.push_resampled(&o);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DecodeError> {
        if let Some((mut r, (_, layout, _))) = self.resampler.take() {
            // The output frame must carry the resampler's output format, else "Output changed".
            while let Some(delay) = r.delay() {
                let mut o = frame::Audio::new(Sample::F32(SampleType::Packed), delay.output as usize + 64, layout);
                r.flush(&mut o).map_err(ff("flushing the resampler"))?;
                if o.samples() == 0 {
                    break;
                }
                self.push_resampled(&o);
            }
        }
        Ok(())
    }
}

/// The best audio stream of an open file, decoded as its packets are read.
pub(crate) struct AudioTrack {
    index: usize,
    decoder: ffmpeg::decoder::Audio,
    mix: Downmixer,
    frame: frame::Audio,
    max_samples: Option<usize>,
    /// Rate and channels of the first decoded frame: what the stream really is (a container can
    /// state HE-AAC's core rate, half the decoded one).
    source: Option<(u32, u32)>,
    errors: usize,
}

impl AudioTrack {
    /// Opens the decoder of `ictx`'s best audio stream; `max_samples` stops it once that many
    /// output samples exist.
    pub(crate) fn open(ictx: &format::context::Input, target_rate: Option<u32>, max_samples: Option<usize>) -> Result<Self, DecodeError> {
        let stream = ictx.streams().best(media::Type::Audio).ok_or(DecodeError::NoAudioStream)?;
        let decoder =
            codec::context::Context::from_parameters(stream.parameters()).and_then(|c| c.decoder().audio()).map_err(ff("opening the audio decoder"))?;
        Ok(Self {
            index: stream.index(),
            decoder,
            mix: Downmixer { resampler: None, rate: target_rate, out: Vec::new() },
            frame: frame::Audio::empty(),
            max_samples,
            source: None,
            errors: 0,
        })
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Whether more packets are needed.
    pub(crate) fn wants(&self) -> bool {
        self.max_samples.is_none_or(|m| self.mix.out.len() < m)
    }

    fn drain(&mut self) -> Result<(), DecodeError> {
        while self.decoder.receive_frame(&mut self.frame).is_ok() {
            self.source.get_or_insert((self.frame.rate(), u32::from(self.frame.channels())));
            self.mix.push(&mut self.frame)?;
        }
        Ok(())
    }

    /// Decodes one packet of the stream; a rejected packet is counted.
    pub(crate) fn push(&mut self, packet: &ffmpeg::Packet) -> Result<(), DecodeError> {
        if self.decoder.send_packet(packet).is_err() {
            self.errors += 1;
            return Ok(());
        }
        self.drain()
    }

    /// The waveform, after what the decoder and resampler still hold.
    pub(crate) fn finish(mut self) -> Result<DecodedAudio, DecodeError> {
        if self.wants() {
            let _ = self.decoder.send_eof();
            self.drain()?;
            self.mix.flush()?;
        }
        let Self { mut mix, max_samples, source, errors, .. } = self;
        if let Some(m) = max_samples {
            mix.out.truncate(m);
        }
        let (Some((source_rate, source_channels)), Some(rate), false) = (source, mix.rate, mix.out.is_empty()) else {
            return Err(DecodeError::NoAudioSamples { errors });
        };
        let duration_s = mix.out.len() as f64 / f64::from(rate);
        Ok(DecodedAudio { samples: mix.out, rate, source_rate, source_channels, duration_s, packet_errors: errors })
    }
}

/// Decodes the best audio stream of `path` to mono f32 at `target_rate` (native when `None`).
pub fn decode_audio(path: &Path, target_rate: Option<u32>) -> Result<DecodedAudio, DecodeError> {
    decode_audio_prefix(path, target_rate, None)
}

/// Like [`decode_audio`], but stops once `max_samples` output samples exist (a preset that cuts
/// to a fixed length needs no more); the result is then exactly `max_samples` long.
pub fn decode_audio_prefix(path: &Path, target_rate: Option<u32>, max_samples: Option<usize>) -> Result<DecodedAudio, DecodeError> {
    let mut ictx = open_input(path)?;
    let mut track = AudioTrack::open(&ictx, target_rate, max_samples)?;
    super::feed(&mut ictx, Some(&mut track), None)?;
    track.finish()
}
