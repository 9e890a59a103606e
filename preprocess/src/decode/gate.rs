//! Which packets of a video stream to decode when only the frames on screen at a few target
//! times are wanted. Pure bookkeeping over packet timestamps (no FFmpeg here), so each rule is
//! tested on timestamp patterns.
//!
//! The frame selected for a target `t` is the last frame whose timestamp is not after `t`. For a
//! packet shown at `p`, let `t(p)` be the first target at or after `p`: the packet can be selected
//! for `t(p)` only. Two kinds of packets can never affect what is selected:
//! - packets before a keyframe `k` in decode order, shown before it, when `k <= t(p)` for each of
//!   them: the keyframe (or a later frame) is selected instead, and nothing after a keyframe
//!   refers to what precedes it. These are dropped undecoded, the decoder drained and restarted
//!   at the keyframe: the work a seek would save, without a seek or an index.
//! - a packet for which another packet `q` exists with `p < q <= t(p)`: `q` or a later one is
//!   selected instead. The decoder may skip such a packet if no other frame refers to it
//!   (`skip_frame = NONREF`); reference frames are decoded anyway. This needs presentation
//!   timestamps; packets without one are always decoded.
//!
//! A packet waits in the gate until every packet that can be shown at or before `t(p)` has been
//! seen (one whose decoding timestamp is past `t(p)`: decoding timestamps never exceed
//! presentation timestamps), so both rules know all they need. The wait holds compressed packets
//! only, about one target interval of the stream.

use std::collections::VecDeque;

/// Target times `(k + phase) / fps` for `k < count`.
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    pub fps: f64,
    pub phase: f64,
    pub count: usize,
}

impl Targets {
    pub fn at(&self, k: usize) -> f64 {
        (k as f64 + self.phase) / self.fps
    }

    /// The first target at or after `t`; `None` past the last one.
    pub fn first_at_or_after(&self, t: f64) -> Option<f64> {
        let k = (t * self.fps - self.phase).ceil().max(0.0) as usize;
        // Float rounding: step back while the previous target still qualifies.
        let k = if k > 0 && self.at(k - 1) >= t { k - 1 } else { k };
        (k < self.count).then(|| self.at(k))
    }
}

/// What the gate knows of a packet before it is decoded, in seconds from the stream's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacketTimes {
    pub pts: Option<f64>,
    pub dts: Option<f64>,
    pub key: bool,
}

impl PacketTimes {
    /// The time used for waiting and dropping: the presentation time, else the decoding time.
    fn time(&self) -> Option<f64> {
        self.pts.or(self.dts)
    }
}

/// Without decoding timestamps, a packet this far past a target is taken as proof that every
/// packet shown at or before the target has been seen (reordering spans far less).
const REORDER_S: f64 = 0.5;

/// How many released packets' timestamps are remembered for the skip rule.
const REMEMBERED: usize = 64;

/// Packets in decode order in, decoder steps out.
pub struct PacketGate<P> {
    targets: Targets,
    pending: VecDeque<Entry<P>>,
    /// Presentation times of the packets released for decoding, the latest last.
    released: VecDeque<f64>,
    /// Over every packet seen: the latest decoding time, and the latest presentation time of
    /// packets without a decoding time.
    max_dts: f64,
    max_pts_without_dts: f64,
}

enum Entry<P> {
    Packet(PacketTimes, P),
    Restart,
}

/// What the decoder does next.
#[derive(Debug, PartialEq)]
pub enum Step<P> {
    /// Decode this packet; `skippable`: the decoder may skip it unless other frames refer to it.
    Decode { packet: P, skippable: bool },
    /// Packets were dropped here: drain the decoder (what was sent comes out), then flush it,
    /// as for a seek; the next packet is a keyframe.
    Restart,
}

impl<P> PacketGate<P> {
    pub fn new(targets: Targets) -> Self {
        Self { targets, pending: VecDeque::new(), released: VecDeque::new(), max_dts: f64::NEG_INFINITY, max_pts_without_dts: f64::NEG_INFINITY }
    }

    /// Takes the next packet in decode order.
    pub fn push(&mut self, times: PacketTimes, packet: P) {
        match times.dts {
            Some(d) => self.max_dts = self.max_dts.max(d),
            None => self.max_pts_without_dts = self.max_pts_without_dts.max(times.pts.unwrap_or(f64::NEG_INFINITY)),
        }
        if let (true, Some(k)) = (times.key, times.time()) {
            self.drop_before(k);
        }
        self.pending.push_back(Entry::Packet(times, packet));
    }

    /// A keyframe shown at `k` arrives: the waiting packets after the last one that can still be
    /// selected before it (its first target is before `k`) are dropped. Only when everything
    /// waiting is shown before the keyframe: one that is shown after it makes the keyframe no
    /// clean restart point.
    fn drop_before(&mut self, k: f64) {
        let mut keep = 0;
        for (i, e) in self.pending.iter().enumerate() {
            if let Entry::Packet(m, _) = e {
                let Some(p) = m.time().filter(|&p| p < k) else { return };
                if self.targets.first_at_or_after(p).is_some_and(|t| t < k) {
                    keep = i + 1;
                }
            }
        }
        if keep < self.pending.len() {
            self.pending.truncate(keep);
            self.pending.push_back(Entry::Restart);
        }
    }

    /// The next step, if it is known yet what to do. `end`: the stream has no more packets
    /// (everything waiting is released).
    pub fn pop(&mut self, end: bool) -> Option<Step<P>> {
        let times = match self.pending.front()? {
            Entry::Restart => {
                self.pending.pop_front();
                return Some(Step::Restart);
            }
            Entry::Packet(times, _) => *times,
        };
        let target = times.time().and_then(|p| self.targets.first_at_or_after(p));
        if !end && target.is_some_and(|t| !self.complete(t)) {
            return None;
        }
        let skippable = times.pts.is_some_and(|p| self.superseded(p));
        let Some(Entry::Packet(_, packet)) = self.pending.pop_front() else { unreachable!("front is a packet") };
        if let Some(p) = times.pts {
            if self.released.len() == REMEMBERED {
                self.released.pop_front();
            }
            self.released.push_back(p);
        }
        Some(Step::Decode { packet, skippable })
    }

    /// Whether every packet that can be shown at or before the last target has been released:
    /// nothing still to come can be selected (the decoder may be drained and stopped; the last
    /// frame it gives out at or before the last target is on screen there).
    pub fn settled(&self) -> bool {
        let Some(last) = self.targets.count.checked_sub(1).map(|k| self.targets.at(k)) else { return false };
        let after = |e: &Entry<P>| match e {
            Entry::Packet(m, _) => m.time().is_some_and(|t| t > last),
            Entry::Restart => true,
        };
        self.complete(last) && self.pending.iter().all(after)
    }

    /// Whether every packet that can be shown at or before `t` has been seen.
    fn complete(&self, t: f64) -> bool {
        self.max_dts > t || self.max_pts_without_dts > t + REORDER_S
    }

    /// Whether the front packet, shown at `p`, is never selected: another packet is shown after
    /// it but not after the first target at or after it. (A waiting packet that a keyframe drops
    /// later is no false proof: the keyframe itself is then shown in the same interval.)
    fn superseded(&self, p: f64) -> bool {
        let Some(target) = self.targets.first_at_or_after(p) else { return false };
        let later = |q: f64| q > p && q <= target;
        let waiting = self.pending.iter().skip(1).any(|e| matches!(e, Entry::Packet(m, _) if m.pts.is_some_and(later)));
        waiting || self.released.iter().any(|&q| later(q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_FPS: Targets = Targets { fps: 1.0, phase: 0.5, count: 3 };

    fn times(pts: f64, dts: f64, key: bool) -> PacketTimes {
        PacketTimes { pts: Some(pts), dts: Some(dts), key }
    }

    /// Runs a stream through the gate: (pts, skippable) of each released packet in order, and
    /// how many restarts happened.
    fn run(stream: &[PacketTimes], targets: Targets) -> (Vec<(f64, bool)>, usize) {
        let mut gate = PacketGate::new(targets);
        let (mut out, mut restarts) = (Vec::new(), 0);
        let mut take = |step: Step<f64>| match step {
            Step::Decode { packet, skippable } => out.push((packet, skippable)),
            Step::Restart => restarts += 1,
        };
        for m in stream {
            gate.push(*m, m.pts.unwrap_or(f64::NAN));
            while let Some(step) = gate.pop(false) {
                take(step);
            }
        }
        while let Some(step) = gate.pop(true) {
            take(step);
        }
        (out, restarts)
    }

    /// I P P P ... at 4 fps, a keyframe every `gop` frames, no reordering.
    fn ip_stream(frames: usize, gop: usize) -> Vec<PacketTimes> {
        (0..frames).map(|i| times(i as f64 / 4.0, i as f64 / 4.0, i % gop == 0)).collect()
    }

    fn kept(out: &[(f64, bool)]) -> Vec<f64> {
        out.iter().filter(|(_, s)| !s).map(|(t, _)| *t).collect()
    }

    #[test]
    fn without_reordering_every_frame_but_the_last_before_a_target_is_skippable() {
        let (out, restarts) = run(&ip_stream(12, 100), ONE_FPS);
        assert_eq!(restarts, 0);
        assert_eq!(out.len(), 12, "nothing dropped without a keyframe");
        // Targets 0.5, 1.5, 2.5; 2.75 is past the last target (never skipped).
        assert_eq!(kept(&out), [0.5, 1.5, 2.5, 2.75]);
    }

    #[test]
    fn packets_before_a_keyframe_at_or_before_their_target_are_dropped() {
        // Keyframes at 0, 1.0, 2.0: 0.75 waits for 1.5's packets and the key at 1.0 drops it;
        // the same for 1.75 at 2.0. 0.25 stays (its target 0.5 is before the key at 1.0).
        let (out, restarts) = run(&ip_stream(12, 4), ONE_FPS);
        assert_eq!(restarts, 2);
        let released: Vec<f64> = out.iter().map(|(t, _)| *t).collect();
        assert_eq!(released, [0.0, 0.25, 0.5, 1.0, 1.25, 1.5, 2.0, 2.25, 2.5, 2.75]);
        assert_eq!(kept(&out), [0.5, 1.5, 2.5, 2.75]);
    }

    #[test]
    fn a_keyframe_drops_only_what_follows_the_last_selectable_packet() {
        // Decoding times 0.5 s behind: when the key at 1.0 arrives, 0.5 (the frame for target
        // 0.5) still waits, so only 0.75 is dropped, and the restart comes after 0.5.
        let stream: Vec<PacketTimes> = (0..12).map(|i| times(i as f64 / 4.0, i as f64 / 4.0 - 0.5, i % 4 == 0)).collect();
        let mut gate = PacketGate::new(ONE_FPS);
        let mut events = Vec::new();
        for (i, m) in stream.iter().enumerate() {
            gate.push(*m, i);
            while let Some(step) = gate.pop(false) {
                events.push(step);
            }
        }
        while let Some(step) = gate.pop(true) {
            events.push(step);
        }
        let d = |packet: usize, skippable: bool| Step::Decode { packet, skippable };
        let want = [
            d(0, true),
            d(1, true),
            d(2, false),
            Step::Restart,
            d(4, true),
            d(5, true),
            d(6, false),
            Step::Restart,
            d(8, true),
            d(9, true),
            d(10, false),
            d(11, false),
        ];
        assert_eq!(events, want);
    }

    #[test]
    fn settled_once_everything_up_to_the_last_target_is_released() {
        let mut gate = PacketGate::new(ONE_FPS);
        let mut settled_at = None;
        for (i, m) in ip_stream(16, 100).iter().enumerate() {
            gate.push(*m, i);
            while gate.pop(false).is_some() {}
            if settled_at.is_none() && gate.settled() {
                settled_at = m.pts;
            }
        }
        // The last target is 2.5: the packet at 2.75 proves nothing more can be shown before it.
        assert_eq!(settled_at, Some(2.75));
        let mut untimed = PacketGate::new(ONE_FPS);
        untimed.push(PacketTimes { pts: None, dts: None, key: true }, 0);
        assert!(!untimed.settled());
    }

    #[test]
    fn a_keyframe_after_the_target_drops_nothing() {
        // Keys every 3 frames at 4 fps: 0, 0.75, 1.5, 2.25. The key at 0.75 is past 0.5's
        // target, so 0.0..0.5 stay; the key at 1.5 drops 0.75..1.25 (all before 1.5 <= 1.5).
        let (out, restarts) = run(&ip_stream(12, 3), ONE_FPS);
        let released: Vec<f64> = out.iter().map(|(t, _)| *t).collect();
        assert_eq!(released, [0.0, 0.25, 0.5, 1.5, 2.25, 2.5, 2.75]);
        assert_eq!(restarts, 2);
    }

    #[test]
    fn reordered_b_frames_are_skippable_unless_they_are_the_last_before_a_target() {
        // Decode order I0 P0.75 B0.25 B0.5 P1.5 B1.0 B1.25 ..., dts increasing and <= pts.
        let order = [0.0, 0.75, 0.25, 0.5, 1.5, 1.0, 1.25, 2.25, 1.75, 2.0, 2.75, 2.5];
        let stream: Vec<PacketTimes> = order.iter().enumerate().map(|(i, &p)| times(p, i as f64 / 4.0 - 0.25, i == 0)).collect();
        let (out, restarts) = run(&stream, ONE_FPS);
        assert_eq!((out.len(), restarts), (12, 0));
        for (t, skippable) in out {
            let selectable = [0.5, 1.5, 2.5].contains(&t) || t > 2.5;
            assert_eq!(skippable, !selectable, "packet at {t}");
        }
    }

    #[test]
    fn packets_wait_until_everything_up_to_their_target_was_seen() {
        let mut gate = PacketGate::new(ONE_FPS);
        gate.push(times(0.0, -0.1, true), 0.0);
        assert!(gate.pop(false).is_none(), "dts -0.1 does not prove that frames up to 0.5 were seen");
        gate.push(times(0.75, 0.6, false), 0.75);
        // dts 0.6 > 0.5: complete; nothing else is shown in (0, 0.5].
        assert_eq!(gate.pop(false), Some(Step::Decode { packet: 0.0, skippable: false }));
    }

    #[test]
    fn without_timestamps_nothing_is_skipped_dropped_or_held() {
        let mut gate = PacketGate::new(ONE_FPS);
        for i in 0..4 {
            gate.push(PacketTimes { pts: None, dts: None, key: i % 2 == 0 }, i);
            assert_eq!(gate.pop(false), Some(Step::Decode { packet: i, skippable: false }), "released at once");
        }
    }

    #[test]
    fn without_decoding_timestamps_a_later_presentation_time_completes() {
        let mut gate = PacketGate::new(ONE_FPS);
        gate.push(PacketTimes { pts: Some(0.0), dts: None, key: true }, 0.0);
        gate.push(PacketTimes { pts: Some(0.9), dts: None, key: false }, 0.9);
        assert!(gate.pop(false).is_none(), "0.9 is within the reordering allowance of 0.5");
        gate.push(PacketTimes { pts: Some(1.1), dts: None, key: false }, 1.1);
        assert!(matches!(gate.pop(false), Some(Step::Decode { packet: 0.0, .. })));
    }

    #[test]
    fn the_first_target_at_or_after_a_time() {
        let t = Targets { fps: 1.0, phase: 0.5, count: 10 };
        assert_eq!(t.first_at_or_after(0.0), Some(0.5));
        assert_eq!(t.first_at_or_after(0.5), Some(0.5));
        assert_eq!(t.first_at_or_after(0.51), Some(1.5));
        assert_eq!(t.first_at_or_after(9.6), None);
        let thirds = Targets { fps: 3.0, phase: 0.0, count: 10 };
        assert_eq!(thirds.first_at_or_after(1.0 / 3.0), Some(thirds.at(1)));
    }
}
