//! Writes a real video file: MPEG-4 Part 2 video + AAC audio in MP4, with FFmpeg's encoders,
//! single-threaded and bit-exact so the same content gives the same bytes.

use std::path::Path;

use ffmpeg::format::sample::{Sample, Type as SampleType};
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling::{Context as Scaler, Flags};
use ffmpeg::util::channel_layout::ChannelLayout;
use ffmpeg::{codec, encoder, format, frame, Packet, Rational};
use ffmpeg_next as ffmpeg;
use image::RgbImage;

use crate::decode::{init, DecodeError};

fn ff(what: &'static str) -> impl FnOnce(ffmpeg::Error) -> DecodeError {
    move |source| DecodeError::Ffmpeg { what, source }
}

fn drain<E>(receive: &mut E, octx: &mut format::context::Output, stream: usize, from: Rational) -> Result<(), DecodeError>
where
    E: FnMut(&mut Packet) -> bool,
{
    let to = octx.stream(stream).expect("stream exists").time_base();
    let mut packet = Packet::empty();
    while receive(&mut packet) {
        packet.set_stream(stream);
        packet.rescale_ts(from, to);
        packet.write_interleaved(octx).map_err(ff("writing a packet"))?;
    }
    Ok(())
}

/// Encodes `frames` (all the same size, at `fps`) and mono `audio` at `rate` Hz into `path`.
pub fn write_mp4(path: &Path, frames: &[RgbImage], fps: i32, audio: &[f32], rate: u32) -> Result<(), DecodeError> {
    init();
    let (w, h) = frames[0].dimensions();
    let mut octx = format::output(&path).map_err(ff("creating the output"))?;
    let global = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);

    let vcodec = encoder::find(codec::Id::MPEG4).ok_or(DecodeError::Ffmpeg { what: "mpeg4 encoder", source: ffmpeg::Error::EncoderNotFound })?;
    let vidx = octx.add_stream(vcodec).map_err(ff("adding the video stream"))?.index();
    let mut venc = codec::context::Context::new_with_codec(vcodec).encoder().video().map_err(ff("video encoder"))?;
    venc.set_width(w);
    venc.set_height(h);
    venc.set_format(Pixel::YUV420P);
    let vtb = Rational::new(1, fps);
    venc.set_time_base(vtb);
    venc.set_frame_rate(Some(Rational::new(fps, 1)));
    venc.set_bit_rate(250_000);
    venc.set_gop(fps as u32);
    let mut flags = codec::Flags::BITEXACT;
    if global {
        flags |= codec::Flags::GLOBAL_HEADER;
    }
    venc.set_flags(flags);
    let mut venc = venc.open_as(vcodec).map_err(ff("opening the video encoder"))?;
    octx.stream_mut(vidx).expect("added").set_parameters(&venc);

    let acodec = encoder::find(codec::Id::AAC).ok_or(DecodeError::Ffmpeg { what: "aac encoder", source: ffmpeg::Error::EncoderNotFound })?;
    let aidx = octx.add_stream(acodec).map_err(ff("adding the audio stream"))?.index();
    let mut aenc = codec::context::Context::new_with_codec(acodec).encoder().audio().map_err(ff("audio encoder"))?;
    aenc.set_rate(rate as i32);
    aenc.set_channel_layout(ChannelLayout::MONO);
    aenc.set_channels(1);
    aenc.set_format(Sample::F32(SampleType::Planar));
    aenc.set_bit_rate(64_000);
    let atb = Rational::new(1, rate as i32);
    aenc.set_time_base(atb);
    aenc.set_flags(flags);
    let mut aenc = aenc.open_as(acodec).map_err(ff("opening the audio encoder"))?;
    octx.stream_mut(aidx).expect("added").set_parameters(&aenc);

    let mut opts = ffmpeg::Dictionary::new();
    opts.set("fflags", "+bitexact");
    octx.write_header_with(opts).map_err(ff("writing the header"))?;

    let mut scaler = Scaler::get(Pixel::RGB24, w, h, Pixel::YUV420P, w, h, Flags::BILINEAR).map_err(ff("scaler"))?;
    for (i, img) in frames.iter().enumerate() {
        let mut rgb = frame::Video::new(Pixel::RGB24, w, h);
        let stride = rgb.stride(0);
        for (y, row) in img.as_raw().chunks_exact(w as usize * 3).enumerate() {
            rgb.data_mut(0)[y * stride..y * stride + row.len()].copy_from_slice(row);
        }
        let mut yuv = frame::Video::empty();
        scaler.run(&rgb, &mut yuv).map_err(ff("converting to YUV"))?;
        yuv.set_pts(Some(i as i64));
        venc.send_frame(&yuv).map_err(ff("encoding video"))?;
        drain(&mut |p| venc.receive_packet(p).is_ok(), &mut octx, vidx, vtb)?;
    }
    venc.send_eof().map_err(ff("flushing video"))?;
    drain(&mut |p| venc.receive_packet(p).is_ok(), &mut octx, vidx, vtb)?;

    let frame_size = (aenc.frame_size() as usize).max(1024);
    for (k, chunk) in audio.chunks(frame_size).enumerate() {
        let mut f = frame::Audio::new(Sample::F32(SampleType::Planar), chunk.len(), ChannelLayout::MONO);
        f.set_rate(rate);
        f.plane_mut::<f32>(0)[..chunk.len()].copy_from_slice(chunk);
        f.set_pts(Some((k * frame_size) as i64));
        aenc.send_frame(&f).map_err(ff("encoding audio"))?;
        drain(&mut |p| aenc.receive_packet(p).is_ok(), &mut octx, aidx, atb)?;
    }
    aenc.send_eof().map_err(ff("flushing audio"))?;
    drain(&mut |p| aenc.receive_packet(p).is_ok(), &mut octx, aidx, atb)?;
    octx.write_trailer().map_err(ff("writing the trailer"))?;
    Ok(())
}
