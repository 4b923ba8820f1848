-- Embeddings for the real UCI Adult data (../shared/data/adult, see its README).
--   cargo run -- sql -f sql/adult_embed.sql

CREATE EXTERNAL TABLE adult STORED AS CSV LOCATION '../shared/data/adult/adult.data.csv'
  OPTIONS ('format.has_header' 'true', 'format.null_regex' '\?');

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
