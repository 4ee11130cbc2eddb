-- bench/outlook/plpgsql_reference.sql — the intermittent demand forecast of
-- ordersync.forecast_intermittent(history, 'auto') written in PL/pgSQL from
-- the definitions in doc/forecast.md ("Intermittent demand"): the reference
-- bench/outlook/run.sh times the C code against, and checks it equals.
CREATE FUNCTION bench_fi_run(y float8[], method text, alpha float8, beta float8,
							 OUT value float8, OUT mse float8)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	z float8 := 0;
	p float8 := 0;
	seen boolean := false;
	last int := 0;
	sse float8 := 0;
	k int := 0;
	f float8 := CASE method WHEN 'sba' THEN 1 - alpha / 2 ELSE 1 END;
	e float8;
	q int;
BEGIN
	FOR t IN 1 .. cardinality(y) LOOP
		IF method = 'tsb' THEN
			IF NOT seen THEN
				IF y[t] > 0 THEN z := y[t]; p := 1.0 / t; seen := true; END IF;
				CONTINUE;
			END IF;
			e := y[t] - p * z; sse := sse + e * e; k := k + 1;
			IF y[t] > 0 THEN p := p + beta * (1 - p); z := z + alpha * (y[t] - z);
			ELSE p := p - beta * p; END IF;
		ELSE
			IF seen THEN e := y[t] - f * z / p; sse := sse + e * e; k := k + 1; END IF;
			IF y[t] > 0 THEN
				q := t - last; last := t;
				IF NOT seen THEN z := y[t]; p := q; seen := true;
				ELSE z := z + alpha * (y[t] - z); p := p + alpha * (q - p); END IF;
			END IF;
		END IF;
	END LOOP;
	value := CASE WHEN NOT seen THEN 0 WHEN method = 'tsb' THEN p * z ELSE f * z / p END;
	mse := CASE WHEN k > 0 THEN sse / k ELSE 0 END;
END $$;

CREATE FUNCTION bench_fi_auto(y float8[], OUT method text, OUT value float8)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	best_mse float8;
	r record;
	m text;
BEGIN
	IF NOT EXISTS (SELECT FROM unnest(y) v WHERE v > 0) THEN
		method := 'none'; value := 0; RETURN;
	END IF;
	FOREACH m IN ARRAY ARRAY['sba', 'tsb', 'croston'] LOOP
		FOR i IN 1 .. 6 LOOP
			FOR j IN 1 .. CASE m WHEN 'tsb' THEN 6 ELSE 1 END LOOP
				r := bench_fi_run(y, m, i * 0.05::float8, CASE m WHEN 'tsb' THEN j * 0.05::float8 ELSE 0 END);
				IF best_mse IS NULL OR r.mse < best_mse THEN
					best_mse := r.mse; method := m; value := r.value;
				END IF;
			END LOOP;
		END LOOP;
	END LOOP;
END $$;
