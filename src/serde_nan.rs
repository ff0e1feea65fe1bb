//! f64 lists that hold NaN ("not evaluated this epoch"), through JSON: serde_json writes a NaN as
//! `null`, and this reads a `null` back as NaN. Without it, a checkpoint of a run evaluated every
//! few epochs (NaN between evaluations) could not be read back: "corrupt", and the run could not
//! resume.

use serde::{Deserialize, Deserializer};

pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct S {
        #[serde(deserialize_with = "super::list")]
        v: Vec<f64>,
    }

    #[test]
    fn nan_survives_a_round_trip() {
        let text = serde_json::to_string(&S { v: vec![1.0, f64::NAN, 2.5] }).unwrap();
        assert_eq!(text, r#"{"v":[1.0,null,2.5]}"#);
        let back: S = serde_json::from_str(&text).unwrap();
        assert!(back.v[0] == 1.0 && back.v[1].is_nan() && back.v[2] == 2.5);
    }
}
