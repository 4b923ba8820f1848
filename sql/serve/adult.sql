-- Start-up SQL of a `tabssl serve` that enriches UCI Adult records (data/adult):
--   target/debug/tabssl serve --models models --sql-file sql/serve/adult.sql --token-file tokens.txt
-- Clients query these tables by name and ingest their own (session tables).
CREATE EXTERNAL TABLE adult STORED AS CSV LOCATION 'data/adult/adult.data.csv.gz'
  OPTIONS ('format.compression' 'gzip', 'format.has_header' 'true', 'format.null_regex' '\?');

-- The VIME embedding beside every record.
CREATE VIEW adult_vime AS
SELECT *,
       embed('adult_vime', age, workclass, fnlwgt, education, "education-num", "marital-status",
             occupation, relationship, race, sex, "capital-gain", "capital-loss", "hours-per-week",
             "native-country") AS vime
FROM adult;
