//! GEO_DISTANCE(lat1, lon1, lat2, lon2[, unit]): great-circle distance by the haversine
//! formula, in kilometres (`KM`, the default) or miles (`MI`), computed exactly as ksqlDB
//! computes it (degrees to radians as `x / 180 * PI`, as Java 8 does) so results agree to
//! the last bit.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;

use super::math::float;
use super::row_udf::{Ret, any_of, not_accepted, null_of, row_error, text, udf};

const EARTH_RADIUS_KM: f64 = 6371.0;
const EARTH_RADIUS_MILES: f64 = 3959.0;

pub fn all() -> Vec<ScalarUDF> {
    vec![udf(
        "geo_distance",
        any_of(&[4, 5]),
        Ret::From(numeric_coordinates),
        |a, t| {
            let coords: Option<Vec<f64>> = a[..4].iter().map(float).collect();
            let Some(c) = coords else {
                return null_of(t);
            };
            let radius = match a.get(4).and_then(text).map(str::to_uppercase).as_deref() {
                None | Some("KM" | "KILOMETER" | "KILOMETERS" | "KILOMETRE" | "KILOMETRES") => {
                    EARTH_RADIUS_KM
                }
                Some("MI" | "MILE" | "MILES") => EARTH_RADIUS_MILES,
                Some(other) => {
                    return Err(row_error(format!(
                        "GeoDistance function units parameter must be one of MI, MILES, KM, KILOMETERS. Got: {other}"
                    )));
                }
            };
            for (lat, lon) in [(c[0], c[1]), (c[2], c[3])] {
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return Err(row_error(
                        "valid latitude values for GeoDistance function are in the range of -90 to 90 decimal degrees, and longitude values are in the range of -180 to 180",
                    ));
                }
            }
            Ok(ScalarValue::Float64(Some(distance(
                c[0], c[1], c[2], c[3], radius,
            ))))
        },
    )]
}

/// Coordinates are numbers (a string is refused while planning, as in ksqlDB).
fn numeric_coordinates(name: &str, args: &[DataType]) -> datafusion::error::Result<DataType> {
    let numeric = args
        .iter()
        .take(4)
        .all(|t| t.is_numeric() || *t == DataType::Null);
    if numeric {
        Ok(DataType::Float64)
    } else {
        Err(not_accepted(name, args))
    }
}

fn radians(degrees: f64) -> f64 {
    degrees / 180.0 * std::f64::consts::PI
}

fn distance(lat1: f64, lon1: f64, lat2: f64, lon2: f64, radius: f64) -> f64 {
    let haversin = |v: f64| (v / 2.0).sin().powi(2);
    let a = haversin(radians(lat2 - lat1))
        + haversin(radians(lon2 - lon1)) * radians(lat1).cos() * radians(lat2).cos();
    2.0 * a.sqrt().asin() * radius
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_ksqldb_to_the_bit() {
        assert_eq!(
            distance(37.4439, -122.1663, 51.5257, -0.1122, EARTH_RADIUS_KM),
            8634.659796579544
        );
        assert_eq!(
            distance(37.4439, -122.1663, 51.5257, -0.1122, EARTH_RADIUS_MILES),
            5365.659729188262
        );
    }
}
