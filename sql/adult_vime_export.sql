-- A VIME pretraining set for UCI Adult (data/adult): for each feature the
-- original x, the corrupted x_tilde, the raw Bernoulli mask and VIME's label
-- m = (x <> x_tilde), two augmented views per row. `tabssl export` writes the same for
-- every column (add --print-sql to see its SQL):
--   tabssl export --input data/adult/adult.data.csv.gz --null-regex '\?' --keep class --views 2 --output train.parquet

-- One partition keeps the file order, so row_number() is a stable row key: the output
-- for a row depends only on (seed, row key, column, view, p).
SET datafusion.execution.target_partitions = 1;

CREATE EXTERNAL TABLE adult_csv STORED AS CSV LOCATION 'data/adult/adult.data.csv.gz'
  OPTIONS ('format.compression' 'gzip', 'format.has_header' 'true', 'format.null_regex' '\?');
CREATE VIEW adult AS SELECT CAST(row_number() OVER () AS BIGINT) - 1 AS row_id, * FROM adult_csv;

-- Pass 1: each column's donor sample (the whole column here: Adult has fewer than
-- 100,000 rows). NULLs are never donors.
COPY (SELECT marginal_sample(age, row_id) AS age,
             marginal_sample("hours-per-week", row_id) AS "hours-per-week",
             marginal_sample(workclass, row_id) AS workclass,
             marginal_sample(education, row_id) AS education
      FROM adult)
TO 'target/adult/adult.marginals.parquet' STORED AS PARQUET;

-- Pass 2: mask with p = 0.3, swap masked cells for draws from the marginal.
COPY (
  SELECT row_id, view_id, class,
         age, age_tilde, age_mask, age <> age_tilde AS age_changed,
         "hours-per-week", hours_tilde, hours_mask, "hours-per-week" <> hours_tilde AS hours_changed,
         workclass, workclass_tilde, workclass_mask, workclass <> workclass_tilde AS workclass_changed,
         education, education_tilde, education_mask, education <> education_tilde AS education_changed
  FROM (
    SELECT row_id, view_id, class, age, "hours-per-week", workclass, education,
           corrupt_swap(age, 'target/adult/adult.marginals.parquet', 0.3, 42, row_id, view_id) AS age_tilde,
           corrupt_mask(age, 0.3, 42, row_id, view_id) AS age_mask,
           corrupt_swap("hours-per-week", 'target/adult/adult.marginals.parquet', 0.3, 42, row_id, view_id) AS hours_tilde,
           corrupt_mask("hours-per-week", 0.3, 42, row_id, view_id) AS hours_mask,
           corrupt_swap(workclass, 'target/adult/adult.marginals.parquet', 0.3, 42, row_id, view_id) AS workclass_tilde,
           corrupt_mask(workclass, 0.3, 42, row_id, view_id) AS workclass_mask,
           corrupt_swap(education, 'target/adult/adult.marginals.parquet', 0.3, 42, row_id, view_id) AS education_tilde,
           corrupt_mask(education, 0.3, 42, row_id, view_id) AS education_mask
    FROM (SELECT *, unnest(make_array(0, 1)) AS view_id FROM adult)
  )
) TO 'target/adult/adult_vime_train.parquet' STORED AS PARQUET;

-- What was written: the mask rate is about p per column; a swap that drew the same value
-- is masked but not changed. NULL cells stay NULL and have NULL masks.
SELECT count(*) AS rows,
       round(avg(CAST(age_mask AS DOUBLE)), 3) AS age_mask_rate,
       round(avg(CAST(age_changed AS DOUBLE)), 3) AS age_changed_rate,
       round(avg(CAST(workclass_mask AS DOUBLE)), 3) AS workclass_mask_rate,
       count(*) - count(workclass_mask) AS workclass_null_cells
FROM 'target/adult/adult_vime_train.parquet';
