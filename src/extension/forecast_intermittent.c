/*-------------------------------------------------------------------------
 *
 * forecast_intermittent.c
 *	  Forecasts of intermittent demand: most SKUs sell a few units a day,
 *	  with days of none in between, where exponential smoothing of the
 *	  demand itself is biased after every zero.  Three methods, each a flat
 *	  forecast of the demand per period:
 *
 *	  - Croston (1972): the sizes of the non-zero demands (Z) and the
 *		intervals between them (P) are smoothed separately, each time a
 *		demand occurs; the forecast is Z / P.
 *	  - SBA, the Syntetos-Boylan approximation (2005): Croston's forecast
 *		is biased upwards by about alpha / 2; SBA is (1 - alpha / 2) Z / P.
 *	  - TSB, Teunter, Syntetos and Babai (2011): the size Z is smoothed when
 *		a demand occurs (alpha), and the probability p of a demand in a
 *		period every period (beta), towards 1 or 0; the forecast is p Z.
 *		Unlike Croston it decays through a run of zeros, so an item that
 *		stopped selling is forecast to sell less and less.
 *
 *	  Initial states, as R's forecast::croston() (ses with initial =
 *	  "simple"): the first demand's size, and the first interval counted
 *	  from before the first period (TSB: p = 1 / that interval).  The
 *	  states are then updated from the next period on.
 *
 *	  Parameters are fitted over a fixed grid, 0.05, 0.10, ..., 0.30 for
 *	  alpha (and beta), by the smallest mean squared one-step error over
 *	  the periods after the first demand (before it no forecast exists).
 *	  That range is where the literature finds these methods work (Croston
 *	  recommends 0.1 to 0.2, Syntetos and Boylan 0.05 to 0.2, Teunter et
 *	  al. try up to 0.3); on a few hundred periods of sparse demand the
 *	  error surface is flat enough that a finer search changes the
 *	  forecast by little, while a fixed grid makes every result exactly
 *	  reproducible by the reference script (bench/forecast/intermittent/).
 *	  Ties go to the smaller parameter.
 *
 *	  The automatic choice takes the method with the smallest of those
 *	  errors, preferring SBA, then TSB, then Croston on a tie.  The mean
 *	  squared error of the chosen method is the variance of a one-step
 *	  error, from which stock_outlook() sizes safety stock.
 *
 *	  Pure C on plain arrays: no ereport(), CHECK_FOR_INTERRUPTS() in the
 *	  loops.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "outlook.h"

#define FI_GRID_STEPS	6
#define FI_GRID_STEP	0.05

const char *
fi_method_name(FiMethod m)
{
	switch (m)
	{
		case FI_NONE:
			return "none";
		case FI_CROSTON:
			return "croston";
		case FI_SBA:
			return "sba";
		case FI_TSB:
			return "tsb";
	}
	return "none";				/* keep the compiler quiet */
}

/* "auto", "croston", "sba" or "tsb"; false for anything else */
bool
fi_method_from_name(const char *name, FiMethod *m, bool *automatic)
{
	*automatic = false;
	if (strcmp(name, "auto") == 0)
		*automatic = true;
	else if (strcmp(name, "croston") == 0)
		*m = FI_CROSTON;
	else if (strcmp(name, "sba") == 0)
		*m = FI_SBA;
	else if (strcmp(name, "tsb") == 0)
		*m = FI_TSB;
	else
		return false;
	return true;
}

/*
 * Croston (factor 1) or SBA (factor 1 - alpha / 2) with one alpha: the
 * forecast after the last period, and the one-step errors after the first
 * demand.
 */
static double
croston_run(const double *y, int n, double alpha, double factor,
			double *sse, int *scored)
{
	double		z = 0.0;
	double		p = 0.0;
	bool		seen = false;
	int			last = 0;

	*sse = 0.0;
	*scored = 0;
	for (int t = 0; t < n; t++)
	{
		if ((t & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		if (seen)
		{
			double		e = y[t] - factor * z / p;

			*sse += e * e;
			(*scored)++;
		}
		if (y[t] > 0.0)
		{
			int			q = t + 1 - last;

			last = t + 1;
			if (!seen)
			{
				z = y[t];
				p = q;
				seen = true;
			}
			else
			{
				z += alpha * (y[t] - z);
				p += alpha * (q - p);
			}
		}
	}
	return seen ? factor * z / p : 0.0;
}

/* TSB with alpha (sizes) and beta (probability) */
static double
tsb_run(const double *y, int n, double alpha, double beta,
		double *sse, int *scored)
{
	double		z = 0.0;
	double		p = 0.0;
	bool		seen = false;

	*sse = 0.0;
	*scored = 0;
	for (int t = 0; t < n; t++)
	{
		double		e;

		if ((t & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		if (!seen)
		{
			if (y[t] > 0.0)
			{
				z = y[t];
				p = 1.0 / (t + 1);
				seen = true;
			}
			continue;
		}
		e = y[t] - p * z;
		*sse += e * e;
		(*scored)++;
		if (y[t] > 0.0)
		{
			p += beta * (1.0 - p);
			z += alpha * (y[t] - z);
		}
		else
			p -= beta * p;
	}
	return seen ? p * z : 0.0;
}

static bool
has_demand(const double *y, int n)
{
	for (int t = 0; t < n; t++)
		if (y[t] > 0.0)
			return true;
	return false;
}

/* the method with its parameters fitted over the grid */
void
fi_fit(const double *y, int n, FiMethod method, FiResult *res)
{
	bool		first = true;

	memset(res, 0, sizeof(FiResult));
	res->method = method;
	if (method == FI_NONE || !has_demand(y, n))
	{
		res->method = FI_NONE;
		return;
	}

	for (int i = 1; i <= FI_GRID_STEPS; i++)
	{
		double		alpha = i * FI_GRID_STEP;

		for (int j = 1; j <= (method == FI_TSB ? FI_GRID_STEPS : 1); j++)
		{
			double		beta = method == FI_TSB ? j * FI_GRID_STEP : 0.0;
			double		sse;
			int			scored;
			double		value;
			double		mse;

			if (method == FI_TSB)
				value = tsb_run(y, n, alpha, beta, &sse, &scored);
			else
				value = croston_run(y, n, alpha,
									method == FI_SBA ? 1.0 - alpha / 2.0 : 1.0,
									&sse, &scored);
			mse = scored > 0 ? sse / scored : 0.0;
			if (first || mse < res->mse)
			{
				res->value = value;
				res->alpha = alpha;
				res->beta = beta;
				res->mse = mse;
				res->scored = scored;
				first = false;
			}
		}
	}
}

/* the method with the smallest in-sample error: SBA, TSB, Croston on ties */
void
fi_auto(const double *y, int n, FiResult *res)
{
	static const FiMethod order[] = {FI_SBA, FI_TSB, FI_CROSTON};

	fi_fit(y, n, order[0], res);
	if (res->method == FI_NONE)
		return;
	for (int i = 1; i < lengthof(order); i++)
	{
		FiResult	other;

		fi_fit(y, n, order[i], &other);
		if (other.mse < res->mse)
			*res = other;
	}
}
