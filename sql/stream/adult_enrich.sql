-- A streaming enrichment job: every Adult record that arrives gets its VIME embedding.
-- Run by tests/it/stream.rs as:
--   zcat data/adult/adult.data.csv.gz | tabssl stream --input-format csv --null-regex '\?' \
--       --sql-file sql/stream/adult_enrich.sql --output-format arrow
-- Statements before the last one run first; the last one streams over the table `input`.
SET tabssl.provider = 'cpu';
SELECT embed('adult_vime', age, workclass, fnlwgt, education, "education-num", "marital-status",
             occupation, relationship, race, sex, "capital-gain", "capital-loss", "hours-per-week",
             "native-country") AS vime
FROM input;
