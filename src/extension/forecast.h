/*-------------------------------------------------------------------------
 *
 * forecast.h
 *	  Declarations shared by the files of ordersync.forecast(): exponential
 *	  smoothing models (forecast_ets.c), the Nelder-Mead minimiser
 *	  (forecast_optim.c), fitting (forecast_fit.c), simulation and normal
 *	  quantiles (forecast_sim.c), and model choice (forecast_select.c).  The
 *	  SQL function itself is in forecast.c.
 *
 *	  Everything below works on plain C arrays and reports problems through
 *	  its results, never with ereport(): forecast.c turns them into errors
 *	  and notices.  Loops over the data call CHECK_FOR_INTERRUPTS().
 *
 *-------------------------------------------------------------------------
 */
#ifndef FORECAST_H
#define FORECAST_H

/* bounds of the SQL arguments */
#define FC_MAX_HORIZON		100000
#define FC_MAX_SEASON		100000
#define FC_MIN_HISTORY		3

/* the fewest values an exponential smoothing model is fitted to */
#define FC_MIN_ETS_HISTORY	5

/*
 * The most values the models are fitted to: the last FC_MAX_FIT_HISTORY of
 * a longer history, or of FC_MAX_FIT_SEASONS seasons if more.  Older
 * values hardly change a forecast, and fitting costs time in proportion.
 */
#define FC_MAX_FIT_HISTORY	100000
#define FC_MAX_FIT_SEASONS	20

/*
 * One exponential smoothing model, ETS(error, trend, season) in the
 * taxonomy of Hyndman, Koehler, Ord and Snyder (2008), in error-correction
 * form:
 *
 *	q = l + phi b					(the level and trend one step on)
 *	mu = q, q + s[t-m] or q s[t-m]	(the one-step forecast)
 *	l' = q + alpha d,  b' = phi b + beta d,  s' = s[t-m] + gamma d'
 *
 * where d is the one-step error in level units (y - mu, or y/s[t-m] - q
 * with a multiplicative season) and d' that of the season (y - mu, or
 * y/q - s[t-m]).  Additive and multiplicative errors follow the same states;
 * they differ in the likelihood and in how uncertainty grows.
 */
typedef struct FcModel
{
	char		error;			/* 'A' additive, 'M' multiplicative */
	char		trend;			/* 'N' none, 'A' additive, 'D' damped */
	char		season;			/* 'N' none, 'A' additive, 'M' multiplicative */
	int			m;				/* season length; 1 without a season */

	double		alpha;
	double		beta;			/* 0 without a trend */
	double		gamma;			/* 0 without a season */
	double		phi;			/* 1 unless damped */

	/* states before the first observation; s0[j] is the season of time j */
	double		l0;
	double		b0;
	double	   *s0;

	/* states after the last observation fitted; s[t % m] is due at time t */
	int			n;
	double		l;
	double		b;
	double	   *s;

	double		sse;			/* sum of squared one-step errors e */
	double		crit;			/* -2 log likelihood, without constants */
	double		sigma2;			/* variance of e: sse / (n - npar) */
	double		aicc;
	int			npar;			/* estimated, sigma included */
} FcModel;

/* forecast_ets.c */
extern FcModel *fc_model_new(char error, char trend, char season, int m);
extern void fc_model_free(FcModel *mod);
extern double fc_filter(const double *y, int n, FcModel *mod);
extern void fc_initial_states(const double *y, int n, FcModel *mod);
extern void fc_point(const FcModel *mod, int h, double *mean);
extern double fc_multistep_error(const double *y, int n, const FcModel *mod,
								 int h, int first);
extern bool fc_has_analytic_variance(const FcModel *mod, int h);
extern void fc_variance(const FcModel *mod, int h, const double *mean,
						double *var);
extern void fc_model_name(const FcModel *mod, char *buf, size_t len);

/* forecast_optim.c */
typedef double (*FcObjective) (const double *x, void *arg);
extern double fc_nelder_mead(FcObjective f, void *arg, int dim, double *x,
							 const double *step, int maxeval, double ftol);

/* forecast_fit.c */
extern bool fc_fit(const double *y, int n, FcModel *mod, const FcModel *from);

/* forecast_sim.c */
extern double fc_normal_quantile(double p);
extern void fc_simulate_intervals(const FcModel *mod, int h, double level,
								  double *lower, double *upper);

/* forecast_select.c: the whole forecast */
typedef struct FcResult
{
	int			h;
	double	   *mean;
	double	   *lower;
	double	   *upper;
	char		model[32];		/* "ETS(M,Ad,M)", "seasonal naive", ... */
	bool		season_dropped; /* seasonal history too short: notice */
	bool		too_short_for_ets;	/* only a naive forecast: notice */
	int			used;			/* the last values the models were fitted to */
} FcResult;

extern void fc_forecast(const double *y, int n, int season, int horizon,
						double level, FcResult *res);

#endif							/* FORECAST_H */
