-- tabssl quickstart: embedding columns in SQL on a built-in synthetic table.
-- Needs nothing outside the repository: tabssl_synthetic() generates an Adult-shaped
-- table and models/adult_pca.onnx is shipped.
--   cargo run -- sql -f sql/quickstart.sql

-- 20,000 seeded rows with Adult's columns (workclass, occupation, country sometimes NULL).
CREATE VIEW people AS SELECT * FROM tabssl_synthetic(20000, 42);

-- What the registry holds and what each model expects.
SELECT name, layout, width, provider, manifest FROM tabssl_models();

-- An 8-wide embedding per row; rows with a NULL input get a NULL embedding.
SELECT id, age, workclass, education,
       embed('adult_pca', age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week",
             workclass, education, "marital-status", occupation, relationship, race, sex, "native-country")
         AS embedding
FROM people ORDER BY id LIMIT 5;

-- The embedding's first component separates the income classes of the synthetic data.
SELECT class, count(*) AS rows, count(e) AS embedded, round(avg(e[1]), 3) AS mean_component_1
FROM (
  SELECT class,
         embed('adult_pca', age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week",
               workclass, education, "marital-status", occupation, relationship, race, sex, "native-country") AS e
  FROM people
) GROUP BY class ORDER BY class;

-- Export the embeddings for a downstream model.
COPY (
  SELECT id, class,
         embed('adult_pca', age, fnlwgt, "education-num", "capital-gain", "capital-loss", "hours-per-week",
               workclass, education, "marital-status", occupation, relationship, race, sex, "native-country")
           AS embedding
  FROM people
) TO 'target/quickstart/embeddings.parquet' STORED AS PARQUET;

-- Pretext-task corruption for self-supervised training (VIME): a first pass samples each
-- column's marginal, the second masks cells with p = 0.3 and swaps in values drawn from it.
-- Reproducible: a cell's draw depends only on (seed, id, column, view).
COPY (SELECT marginal_sample(age, id) AS age, marginal_sample(occupation, id) AS occupation FROM people)
TO 'target/quickstart/people.marginals.parquet' STORED AS PARQUET;

SELECT id, age, corrupt_swap(age, 'target/quickstart/people.marginals.parquet', 0.3, 42, id) AS age_tilde,
       corrupt_mask(age, 0.3, 42, id) AS age_mask,
       occupation, corrupt_swap(occupation, 'target/quickstart/people.marginals.parquet', 0.3, 42, id) AS occupation_tilde,
       corrupt_mask(occupation, 0.3, 42, id) AS occupation_mask
FROM people ORDER BY id LIMIT 5;
