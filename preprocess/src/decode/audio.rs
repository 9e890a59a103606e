//! Audio: the best audio stream, resampled with swresample to the preset's rate (channels kept),
//! then downmixed to mono as the arithmetic mean of the channels (librosa's `mono=True`; FFmpeg's
//! own downmix matrix would scale by 1/sqrt(2) instead, see design.md).

use std::path::Path;

use ffmpeg::format::sample::{Sample, Type as SampleType};
use ffmpeg::util::channel_layout::ChannelLayout;
use ffmpeg::{codec, frame, media, software::resampling};
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
    rate: u32,
    out: Vec<f32>,
}

impl Downmixer {
    fn push_resampled(&mut self, o: &frame::Audio) {
        let channels = o.channels().max(1) as usize;
        let n = o.samples();
        let bytes = &o.data(0)[..n * channels * 4];
        let inv = 1.0 / channels as f32;
        self.out.extend(bytes.chunks_exact(4 * channels).map(|c| {
            c.chunks_exact(4).map(|s| f32::from_ne_bytes([s[0], s[1], s[2], s[3]])).sum::<f32>() * inv
        }));
    }

    fn push(&mut self, f: &mut frame::Audio) -> Result<(), DecodeError> {
        let layout = if f.channel_layout().is_empty() { ChannelLayout::default(i32::from(f.channels())) } else { f.channel_layout() };
        let key = (f.format(), layout, f.rate());
        if self.resampler.as_ref().is_none_or(|(_, k)| *k != key) {
            self.flush()?;
            let ctx = resampling::Context::get(key.0, layout, key.2, Sample::F32(SampleType::Packed), layout, self.rate)
                .map_err(ff("creating the resampler"))?;
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

/// Decodes the best audio stream of `path` to mono f32 at `target_rate` (native when `None`).
pub fn decode_audio(path: &Path, target_rate: Option<u32>) -> Result<DecodedAudio, DecodeError> {
    decode_audio_prefix(path, target_rate, None)
}

/// Like [`decode_audio`], but stops once `max_samples` output samples exist (a preset that cuts
/// to a fixed length needs no more); the result is then exactly `max_samples` long.
pub fn decode_audio_prefix(path: &Path, target_rate: Option<u32>, max_samples: Option<usize>) -> Result<DecodedAudio, DecodeError> {
    let mut ictx = open_input(path)?;
    let stream = ictx.streams().best(media::Type::Audio).ok_or(DecodeError::NoAudioStream)?;
    let index = stream.index();
    let mut decoder = codec::context::Context::from_parameters(stream.parameters())
        .and_then(|c| c.decoder().audio())
        .map_err(ff("opening the audio decoder"))?;
    let (source_rate, source_channels) = (decoder.rate(), u32::from(decoder.channels()));
    let rate = target_rate.unwrap_or(source_rate);
    let mut mix = Downmixer { resampler: None, rate, out: Vec::new() };
    let mut errors = 0;
    let mut frame = frame::Audio::empty();
    let mut drain = |decoder: &mut ffmpeg::decoder::Audio, mix: &mut Downmixer| -> Result<(), DecodeError> {
        while decoder.receive_frame(&mut frame).is_ok() {
            mix.push(&mut frame)?;
        }
        Ok(())
    };
    for (s, packet) in ictx.packets() {
        if s.index() != index {
            continue;
        }
        if decoder.send_packet(&packet).is_err() {
            errors += 1;
            continue;
        }
        drain(&mut decoder, &mut mix)?;
        if max_samples.is_some_and(|m| mix.out.len() >= m) {
            break;
        }
    }
    if max_samples.is_none_or(|m| mix.out.len() < m) {
        let _ = decoder.send_eof();
        drain(&mut decoder, &mut mix)?;
        mix.flush()?;
    }
    if let Some(m) = max_samples {
        mix.out.truncate(m);
    }
    if mix.out.is_empty() {
        return Err(DecodeError::NoAudioSamples { errors });
    }
    let duration_s = mix.out.len() as f64 / f64::from(rate);
    Ok(DecodedAudio { samples: mix.out, rate, source_rate, source_channels, duration_s, packet_errors: errors })
}
