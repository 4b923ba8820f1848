//! The command line's names for the library's enums. The library's types know nothing of
//! clap: each one is mirrored here by a value enum with the same variants (so the values
//! are the variants' names in kebab case) and the help text the `--help` output shows.
//! The conversions both ways match every variant, so a variant added to the library and
//! not here fails to compile.

use tabssl_eval::Classifier;
use tabssl_export::ExportFormat;
use tabssl_functions::Method;
use tabssl_stream::{InputFormat, SinkFormat};
use tabssl_train::FeatureLayer;

/// Declares a clap value enum mirroring a library enum variant for variant.
macro_rules! mirror {
    ($(#[doc = $doc:expr])* $cli:ident => $lib:ty { $($(#[doc = $variant_doc:expr])* $variant:ident,)+ }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
        pub enum $cli {
            $($(#[doc = $variant_doc])* $variant,)+
        }

        impl From<$cli> for $lib {
            fn from(choice: $cli) -> Self {
                match choice {
                    $($cli::$variant => Self::$variant,)+
                }
            }
        }

        impl $cli {
            /// Parses the mirror's names into the library's value.
            pub fn parser() -> impl clap::builder::TypedValueParser<Value = $lib> {
                clap::builder::TypedValueParser::map(clap::builder::EnumValueParser::<Self>::new(), <$lib>::from)
            }
        }

        impl From<$lib> for $cli {
            fn from(value: $lib) -> Self {
                match value {
                    $(<$lib>::$variant => Self::$variant,)+
                }
            }
        }
    };
}

mirror! {
    /// `--method`: the pretext task.
    MethodChoice => Method {
        /// VIME: cells masked with p [0.3] take a value from the column's marginal; mask
        /// estimation + feature reconstruction.
        Vime,
        /// SCARF: the same corruption at p [0.6]; contrastive learning between a row and its
        /// corrupted view.
        Scarf,
        /// Denoising autoencoder with swap noise [0.15]: reconstruct the clean row.
        Dae,
        /// Export only: Gaussian noise on numeric columns (sigma = --noise-std x the column's
        /// std) with probability p [1.0]; other columns get swap noise at 0.15.
        Noise,
        /// Export only: constant masking (TabNet obfuscation, blanking): masked cells become
        /// the fill value [NULL].
        Blank,
    }
}

mirror! {
    /// `tabssl export --format`.
    ExportFormatChoice => ExportFormat {
        /// Apache Parquet.
        Parquet,
        /// The Arrow IPC file format (Feather v2), which training loaders memory-map.
        Arrow,
    }
}

mirror! {
    /// `tabssl pretrain --feature-layers`.
    FeatureLayerChoice => FeatureLayer {
        /// The hidden layer after its ReLU (--hidden wide).
        Hidden,
        /// The encoder's output (--dim wide): what the pretext task trained.
        Embedding,
    }
}

mirror! {
    /// `tabssl evaluate --classifiers`.
    ClassifierChoice => Classifier {
        /// L2-regularised logistic regression.
        Logistic,
        /// One hidden layer of 64 ReLU units.
        Mlp,
        /// Gradient-boosted trees on the representation's tree view.
        Gbdt,
        /// Gradient-boosted trees on the raw columns blended with the logistic and MLP models
        /// on every embedding.
        Stack,
    }
}

mirror! {
    /// `tabssl stream --input-format`.
    InputFormatChoice => InputFormat {
        /// One JSON object per line.
        Ndjson,
        /// Comma-separated values, one record per line (with --csv-multiline, a quoted field
        /// may hold newlines).
        Csv,
        /// The Arrow IPC streaming format.
        Arrow,
    }
}

mirror! {
    /// `tabssl stream --output-format`.
    SinkFormatChoice => SinkFormat {
        /// One JSON object per line; embeddings are JSON arrays.
        Ndjson,
        /// CSV with a header; list columns are written as `[a, b, ...]` text.
        Csv,
        /// The Arrow IPC streaming format.
        Arrow,
        /// Parquet files in a directory, rotated every --rotate-rows rows.
        Parquet,
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn every_choice_names_its_library_value_and_comes_back() {
        for choice in MethodChoice::value_variants() {
            let method = Method::from(*choice);
            assert_eq!(MethodChoice::from(method), *choice);
            let name = choice.to_possible_value().map(|v| v.get_name().to_string());
            assert_eq!(
                name.as_deref().map(str::parse::<Method>).and_then(Result::ok),
                Some(method)
            );
        }
        let names: Vec<String> = SinkFormatChoice::value_variants()
            .iter()
            .filter_map(|c| c.to_possible_value().map(|v| v.get_name().to_string()))
            .collect();
        assert_eq!(names, ["ndjson", "csv", "arrow", "parquet"]);
    }
}
