/*-------------------------------------------------------------------------
 *
 * forecast_select.c
 *	  The forecast of ordersync.forecast(): which models are tried on a
 *	  history, which one is chosen, and its forecasts and intervals.
 *
 *	  Every exponential smoothing model the data allow is fitted by maximum
 *	  likelihood (forecast_fit.c).  Then:
 *
 *	  - With a season, the models and the seasonal naive forecast (each
 *		value the one a season earlier) are judged by what the forecasts
 *		are asked for: forecasting a whole season ahead.  Each model
 *		forecasts one season from every point of the three seasons before
 *		the last one (with the states it had there, so that every forecast
 *		season lies within the history), and the one whose mean absolute
 *		error is smallest is chosen; the seasonal naive forecast
 *		is chosen unless that error is at least FC_NAIVE_MARGIN smaller
 *		than its own, because it has no parameters fitted to the very data
 *		it is judged on.  Likelihoods judge one step ahead only, and on
 *		frequent data (hours, half hours) the model that follows the last
 *		values best is often far from the best one a week ahead.
 *	  - Without a season, the model with the smallest AICc is chosen, as in
 *		Hyndman et al. (2008, section 7.2).  The naive forecast (the last
 *		value) is ETS(A,N,N) with alpha near 1, one of them.
 *
 *	  The data are divided by their mean absolute value first, so that the
 *	  fitting sees figures near 1 whatever their unit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/float.h"

#include "forecast.h"

/* from how many seasons the forecasts of a season are judged */
#define FC_JUDGED_SEASONS	3

/* how much better than the seasonal naive forecast a model must do */
#define FC_NAIVE_MARGIN		0.05

typedef struct Spec
{
	char		error;
	char		trend;
	char		season;
} Spec;

/* every model tried; multiplicative ones need positive data */
static const Spec all_specs[] = {
	{'A', 'N', 'N'}, {'A', 'A', 'N'}, {'A', 'D', 'N'},
	{'M', 'N', 'N'}, {'M', 'A', 'N'}, {'M', 'D', 'N'},
	{'A', 'N', 'A'}, {'A', 'A', 'A'}, {'A', 'D', 'A'},
	{'M', 'N', 'A'}, {'M', 'A', 'A'}, {'M', 'D', 'A'},
	{'M', 'N', 'M'}, {'M', 'A', 'M'}, {'M', 'D', 'M'},
};

/*
 * The seasonal naive forecast of y[0..n) for h steps (lag m; m = 1 is the
 * naive forecast), and in *sd the standard deviation of the error of its
 * first season: the root mean square of its errors in the history.  Step
 * j's error adds up floor((j - 1) / m) + 1 such errors.
 */
static void
snaive(const double *y, int n, int m, int h, double *mean, double *sd)
{
	double		sse = 0.0;

	for (int j = 0; j < h; j++)
		mean[j] = y[n - m + j % m];
	for (int t = m; t < n; t++)
		sse += (y[t] - y[t - m]) * (y[t] - y[t - m]);
	*sd = n > m ? sqrt(sse / (n - m)) : 0.0;
}

/* fc_multistep_error() of the seasonal naive forecast */
static double
snaive_multistep_error(const double *y, int n, int m, int h, int first)
{
	double		total = 0.0;

	for (int t = first; t <= n - h; t++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < h; j++)
			total += fabs(y[t + j] - y[t - m + j % m]);
	}
	return total / ((double) (n - h - first + 1) * h);
}

/*
 * The model a fit of spec i starts from: the same model without the
 * damping, or without the trend, or with an additive error; NULL when none
 * of them was fitted.
 */
static const FcModel *
warm_start(FcModel **fitted, int i)
{
	const Spec *sp = &all_specs[i];

	for (int k = 0; k < i; k++)
	{
		const Spec *o = &all_specs[k];

		if (fitted[k] == NULL || o->season != sp->season)
			continue;
		if (o->error == sp->error &&
			((sp->trend == 'D' && o->trend == 'A') ||
			 (sp->trend == 'A' && o->trend == 'N')))
			return fitted[k];
	}
	for (int k = 0; k < i; k++)
	{
		const Spec *o = &all_specs[k];

		if (fitted[k] && o->season == sp->season && o->trend == sp->trend &&
			o->error != sp->error)
			return fitted[k];
	}
	return NULL;
}

/*
 * The chosen model fitted to y[0..n), or NULL for the seasonal naive
 * forecast.
 */
static FcModel *
choose(const double *y, int n, int m, bool seasonal, bool positive)
{
	FcModel    *fitted[lengthof(all_specs)];
	FcModel    *best = NULL;
	double		best_score = 0.0;
	int			first = 0;

	/* the origins the forecasts of a season are judged from */
	if (seasonal)
		first = Max(m, n - m - FC_JUDGED_SEASONS * m);

	for (int i = 0; i < lengthof(all_specs); i++)
	{
		const Spec *sp = &all_specs[i];
		FcModel    *mod;
		double		score;

		fitted[i] = NULL;
		if (sp->season != 'N' && !seasonal)
			continue;
		if ((sp->error == 'M' || sp->season == 'M') && !positive)
			continue;

		mod = fc_model_new(sp->error, sp->trend, sp->season, m);
		if (!fc_fit(y, n, mod, warm_start(fitted, i)))
		{
			fc_model_free(mod);
			continue;
		}
		fitted[i] = mod;
		score = seasonal ? fc_multistep_error(y, n, mod, m, first) : mod->aicc;
		if (best == NULL || score < best_score)
		{
			best = mod;
			best_score = score;
		}
	}

	if (best && seasonal &&
		best_score >= (1.0 - FC_NAIVE_MARGIN) * snaive_multistep_error(y, n, m, m, first))
		best = NULL;

	for (int i = 0; i < lengthof(all_specs); i++)
		if (fitted[i] && fitted[i] != best)
			fc_model_free(fitted[i]);
	return best;
}

void
fc_forecast(const double *yin, int n, int season, int horizon, double level,
			FcResult *res)
{
	const int	h = horizon;
	const double z = fc_normal_quantile(0.5 + level / 2.0);
	double		scale = 0.0;
	double	   *y;
	int			m = season > 1 ? season : 1;
	bool		seasonal;
	bool		positive = true;
	bool		constant = true;
	FcModel    *mod = NULL;

	memset(res, 0, sizeof(FcResult));
	res->h = h;
	res->used = Min(n, Max(FC_MAX_FIT_HISTORY, FC_MAX_FIT_SEASONS * m));
	yin += n - res->used;
	n = res->used;
	res->mean = palloc(sizeof(double) * h);
	res->lower = palloc(sizeof(double) * h);
	res->upper = palloc(sizeof(double) * h);

	for (int t = 0; t < n; t++)
	{
		scale += fabs(yin[t]) / n;
		if (yin[t] <= 0.0)
			positive = false;
		if (yin[t] != yin[0])
			constant = false;
	}

	/* nothing to fit: the value itself, without uncertainty */
	if (constant)
	{
		for (int j = 0; j < h; j++)
			res->mean[j] = res->lower[j] = res->upper[j] = yin[0];
		strlcpy(res->model, "constant", sizeof(res->model));
		return;
	}

	y = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	for (int t = 0; t < n; t++)
		y[t] = yin[t] / scale;

	/* a season needs two of them to be told from noise */
	seasonal = m > 1 && n >= 2 * m;
	if (m > 1 && !seasonal)
	{
		res->season_dropped = true;
		m = 1;
	}

	if (n >= FC_MIN_ETS_HISTORY)
		mod = choose(y, n, m, seasonal, positive);
	else
		res->too_short_for_ets = true;

	if (mod == NULL)
	{
		double		sd;

		snaive(y, n, m, h, res->mean, &sd);
		for (int j = 0; j < h; j++)
		{
			double		w = z * sd * sqrt((double) (j / m + 1));

			res->lower[j] = res->mean[j] - w;
			res->upper[j] = res->mean[j] + w;
		}
		strlcpy(res->model, m > 1 ? "seasonal naive" : "naive", sizeof(res->model));
	}
	else
	{
		fc_point(mod, h, res->mean);
		if (fc_has_analytic_variance(mod, h))
		{
			double	   *var = palloc(sizeof(double) * h);

			fc_variance(mod, h, res->mean, var);
			for (int j = 0; j < h; j++)
			{
				double		w = z * sqrt(Max(var[j], 0.0));

				res->lower[j] = res->mean[j] - w;
				res->upper[j] = res->mean[j] + w;
			}
			pfree(var);
		}
		else
			fc_simulate_intervals(mod, h, level, res->lower, res->upper);
		fc_model_name(mod, res->model, sizeof(res->model));
		fc_model_free(mod);
	}

	/* bounds that overflowed are infinite, never NaN */
	for (int j = 0; j < h; j++)
	{
		res->mean[j] *= scale;
		res->lower[j] = isnan(res->lower[j]) ? -get_float8_infinity() : res->lower[j] * scale;
		res->upper[j] = isnan(res->upper[j]) ? get_float8_infinity() : res->upper[j] * scale;
	}
	pfree(y);
}
