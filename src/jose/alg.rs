//! The JWS algorithms accepted on a workload's token, and what key each needs. No I/O here.

/// An accepted JWS `alg` (the contract validation step 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
}

/// An elliptic curve for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }

    /// Bytes of a coordinate, and of each of r and s in a JWS signature.
    pub fn field_bytes(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    /// The group order n, big-endian, `field_bytes` long: r and s must lie in [1, n − 1].
    pub fn order(self) -> &'static [u8] {
        match self {
            Self::P256 => &P256_ORDER,
            Self::P384 => &P384_ORDER,
            Self::P521 => &P521_ORDER,
        }
    }
}

/// Group orders from SEC 2 v2 / FIPS 186-4 D.1.2.
const P256_ORDER: [u8; 32] =
    hex32(*b"ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
const P384_ORDER: [u8; 48] = hex48(*b"ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973");
const P521_ORDER: [u8; 66] = hex66(*b"01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409");

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not lower-case hex"),
    }
}

macro_rules! hex_fn {
    ($name:ident, $len:literal) => {
        const fn $name(text: [u8; $len * 2]) -> [u8; $len] {
            let mut out = [0u8; $len];
            let mut i = 0;
            while i < $len {
                out[i] = nibble(text[2 * i]) << 4 | nibble(text[2 * i + 1]);
                i += 1;
            }
            out
        }
    };
}
hex_fn!(hex32, 32);
hex_fn!(hex48, 48);
hex_fn!(hex66, 66);

/// A hash function of the SHA-2 family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// Web Crypto's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    /// Output length in bytes (the RSA-PSS salt length JWS uses).
    pub fn output_bytes(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyNeed {
    Rsa,
    Ec(Curve),
    Ed25519,
}

impl Alg {
    pub const ALL: [Alg; 10] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::EdDsa,
    ];

    /// The accepted algorithm named exactly `name` (case-sensitive, as JWS requires).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The hash it signs over (Ed25519 hashes internally: `None`).
    pub fn hash(self) -> Option<Hash> {
        match self {
            Self::Rs256 | Self::Ps256 | Self::Es256 => Some(Hash::Sha256),
            Self::Rs384 | Self::Ps384 | Self::Es384 => Some(Hash::Sha384),
            Self::Rs512 | Self::Ps512 | Self::Es512 => Some(Hash::Sha512),
            Self::EdDsa => None,
        }
    }

    pub fn key_need(self) -> KeyNeed {
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => {
                KeyNeed::Rsa
            }
            Self::Es256 => KeyNeed::Ec(Curve::P256),
            Self::Es384 => KeyNeed::Ec(Curve::P384),
            Self::Es512 => KeyNeed::Ec(Curve::P521),
            Self::EdDsa => KeyNeed::Ed25519,
        }
    }

    /// Whether it is RSA-PSS (as opposed to PKCS#1 v1.5).
    pub fn is_pss(self) -> bool {
        matches!(self, Self::Ps256 | Self::Ps384 | Self::Ps512)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_sensitively() {
        for alg in Alg::ALL {
            assert_eq!(Alg::parse(alg.name()), Some(alg));
        }
        for name in ["none", "HS256", "es256", "RS1", "ES256K", "EdDSA ", ""] {
            assert_eq!(Alg::parse(name), None, "{name}");
        }
    }

    #[test]
    fn orders_have_the_field_length() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            assert_eq!(curve.order().len(), curve.field_bytes());
        }
        assert_eq!(P256_ORDER[31], 0x51);
        assert_eq!(P521_ORDER[0], 0x01);
    }
}
