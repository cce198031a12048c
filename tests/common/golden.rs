//! FBGEMM's golden vectors (`../shared/golden/`): the manifest and typed access to each
//! case's arrays. See `../shared/golden/README.md` for the layout.

use serde_json::Value;

/// The parsed `manifest.json`.
pub struct Manifest {
    pub json: Value,
}

impl Manifest {
    pub fn load() -> Manifest {
        let bytes = super::read_shared("golden/manifest.json");
        let json = serde_json::from_slice(&bytes).expect("golden/manifest.json is valid JSON");
        Manifest { json }
    }

    /// Every case of `kind` (e.g. `"embedding_bag"`), loaded. Fails if there are none.
    pub fn cases(&self, kind: &str) -> Vec<Case> {
        let cases: Vec<Case> = self.json["cases"]
            .as_array()
            .expect("manifest has a cases array")
            .iter()
            .filter(|c| c["kind"] == kind)
            .map(Case::load)
            .collect();
        assert!(!cases.is_empty(), "no golden case of kind {kind}");
        cases
    }
}

/// One case: its manifest entry and the bytes of its `.bin` file.
pub struct Case {
    pub name: String,
    pub meta: Value,
    pub bytes: Vec<u8>,
}

impl Case {
    fn load(meta: &Value) -> Case {
        let name = meta["name"].as_str().expect("case name").to_string();
        let file = meta["file"].as_str().expect("case file");
        let bytes = super::read_shared(&format!("golden/{file}"));
        assert_eq!(
            bytes.len() as u64,
            meta["file_bytes"].as_u64().expect("file_bytes"),
            "golden/{file} has the wrong size"
        );
        Case {
            name,
            meta: meta.clone(),
            bytes,
        }
    }

    /// `params[key]`.
    pub fn param(&self, key: &str) -> &Value {
        &self.meta["params"][key]
    }

    /// Whether the case has an array called `name`.
    pub fn has(&self, name: &str) -> bool {
        self.array_meta(name).is_some()
    }

    fn array_meta(&self, name: &str) -> Option<&Value> {
        self.meta["arrays"]
            .as_array()?
            .iter()
            .find(|a| a["name"] == name)
    }

    /// The raw bytes of array `name`, checked to have dtype `dtype`.
    pub fn raw(&self, name: &str, dtype: &str) -> &[u8] {
        let a = self
            .array_meta(name)
            .unwrap_or_else(|| panic!("case {} has no array {name}", self.name));
        assert_eq!(a["dtype"], dtype, "case {} array {name} dtype", self.name);
        let off = a["offset"].as_u64().unwrap() as usize;
        let len = a["length"].as_u64().unwrap() as usize;
        &self.bytes[off..off + len]
    }

    /// The shape of array `name`.
    pub fn shape(&self, name: &str) -> Vec<usize> {
        self.array_meta(name)
            .unwrap_or_else(|| panic!("case {} has no array {name}", self.name))["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect()
    }

    pub fn u8(&self, name: &str) -> Vec<u8> {
        self.raw(name, "u8").to_vec()
    }

    pub fn i8(&self, name: &str) -> Vec<i8> {
        self.raw(name, "i8").iter().map(|&b| b as i8).collect()
    }

    pub fn f32(&self, name: &str) -> Vec<f32> {
        chunks::<4>(self.raw(name, "f32"))
            .map(f32::from_le_bytes)
            .collect()
    }

    pub fn f16(&self, name: &str) -> Vec<half::f16> {
        chunks::<2>(self.raw(name, "f16"))
            .map(half::f16::from_le_bytes)
            .collect()
    }

    pub fn i32(&self, name: &str) -> Vec<i32> {
        chunks::<4>(self.raw(name, "i32"))
            .map(i32::from_le_bytes)
            .collect()
    }

    pub fn i64(&self, name: &str) -> Vec<i64> {
        chunks::<8>(self.raw(name, "i64"))
            .map(i64::from_le_bytes)
            .collect()
    }
}

fn chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    assert_eq!(bytes.len() % N, 0);
    bytes.chunks_exact(N).map(|c| c.try_into().unwrap())
}
