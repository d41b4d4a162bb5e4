//! Deterministic random streams derived from the run's seed.
//!
//! One stream per workload step and one per (client, step, request number)
//! for faults, so a replay makes the same choices at each step however many
//! random draws an earlier step's timing caused (how many conflicts were
//! open, how many requests a sync made before it was killed).

use rand::rngs::StdRng;
use rand::SeedableRng;

/// What a stream is for, so streams of different purposes never coincide.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Purpose {
    Setup = 1,
    Step = 2,
    Fault = 3,
    Resolve = 4,
    Restore = 5,
}

/// SplitMix64's finaliser: a good 64-bit mix, stable across Rust versions
/// (unlike `DefaultHasher`).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream for `purpose` and `parts` (e.g. step, client, request number).
pub fn stream(seed: u64, purpose: Purpose, parts: &[u64]) -> StdRng {
    let mut h = mix(seed ^ mix(purpose as u64));
    for &p in parts {
        h = mix(h ^ mix(p));
    }
    StdRng::seed_from_u64(h)
}

/// A stable number for a name (FNV-1a), to key a stream by a record.
pub fn name_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn streams_depend_only_on_their_key() {
        let draw = |seed, parts: &[u64]| stream(seed, Purpose::Step, parts).gen::<u64>();
        assert_eq!(draw(7, &[3]), draw(7, &[3]));
        assert_ne!(draw(7, &[3]), draw(7, &[4]));
        assert_ne!(draw(7, &[3]), draw(8, &[3]));
        assert_ne!(draw(7, &[1, 2]), draw(7, &[2, 1]));
        assert_ne!(stream(7, Purpose::Step, &[3]).gen::<u64>(), stream(7, Purpose::Fault, &[3]).gen::<u64>());
    }
}
