-- Embeddings for the real UCI Adult data (data/adult, see its README).
--   cargo run -- sql -f sql/adult_embed.sql

CREATE EXTERNAL TABLE adult STORED AS CSV LOCATION 'data/adult/adult.data.csv.gz'
  OPTIONS ('format.compression' 'gzip', 'format.has_header' 'true', 'format.null_regex' '\?');

-- Missing values ('?') are NULL, so those rows get a NULL embedding.
SELECT count(*) AS rows,
       count(embed('adult_pca', age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week",
                   workclass, education, "marital-status", occupation, relationship, race, sex, "native-country"))
         AS embedded
FROM adult;

-- Keep the label beside the embedding, ready for a downstream model with few labels.
COPY (
  SELECT class,
         embed('adult_pca', age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week",
               workclass, education, "marital-status", occupation, relationship, race, sex, "native-country")
           AS embedding
  FROM adult
) TO 'target/adult/adult_pca_embeddings.parquet' STORED AS PARQUET;

-- The self-supervised encoders (models/README.md) encode missing values themselves
-- ("nulls": "encode" in their manifests), so every row gets an embedding, NULL cells included.
SELECT count(*) AS rows,
       count(embed('adult_vime', age, workclass, fnlwgt, education, "education-num", "marital-status",
                   occupation, relationship, race, sex, "capital-gain", "capital-loss", "hours-per-week",
                   "native-country")) AS embedded
FROM adult;

-- VIME and SCARF embeddings side by side with the label, for a model trained on few labels.
COPY (
  SELECT class,
         embed('adult_vime', age, workclass, fnlwgt, education, "education-num", "marital-status",
               occupation, relationship, race, sex, "capital-gain", "capital-loss", "hours-per-week",
               "native-country") AS vime,
         embed('adult_scarf', age, workclass, fnlwgt, education, "education-num", "marital-status",
               occupation, relationship, race, sex, "capital-gain", "capital-loss", "hours-per-week",
               "native-country") AS scarf
  FROM adult
) TO 'target/adult/adult_ssl_embeddings.parquet' STORED AS PARQUET;
