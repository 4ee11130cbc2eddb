/*-------------------------------------------------------------------------
 *
 * outlook.h
 *	  Declarations shared by the files that look ahead on the shop's own
 *	  data: intermittent demand forecasts (forecast_intermittent.c), the
 *	  order volume forecast (forecast_orders.c), the stock outlook
 *	  (stock_outlook.c), stock-out predictions (stockout.c) and hot SKUs
 *	  prepared before a peak (peak.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDERSYNC_OUTLOOK_H
#define ORDERSYNC_OUTLOOK_H

#include "datatype/timestamp.h"
#include "utils/date.h"

/*
 * forecast_intermittent.c: Croston, SBA and TSB on a demand history of
 * non-negative values, one per period, oldest first.  Pure C: no ereport.
 */
typedef enum FiMethod
{
	FI_NONE,					/* no demand at all: 0 */
	FI_CROSTON,
	FI_SBA,
	FI_TSB
} FiMethod;

typedef struct FiResult
{
	FiMethod	method;
	double		value;			/* the forecast demand per period */
	double		alpha;			/* smoothing of sizes (and intervals) */
	double		beta;			/* TSB: smoothing of the probability; else 0 */
	double		mse;			/* in-sample mean squared one-step error */
	int			scored;			/* how many one-step errors the mse has */
} FiResult;

extern const char *fi_method_name(FiMethod m);
extern bool fi_method_from_name(const char *name, FiMethod *m, bool *automatic);
extern void fi_fit(const double *y, int n, FiMethod method, FiResult *res);
extern void fi_auto(const double *y, int n, FiResult *res);

/* forecast_orders.c: orders per bucket over ordersync.rollup_hourly */
typedef struct OrdersForecast
{
	TimestampTz first;			/* start of the first bucket forecast */
	int64		bucket_us;
	int			season;
	int			history;		/* complete buckets the forecast is made from */
	int			h;
	double	   *value;
	double	   *lower;
	double	   *upper;
} OrdersForecast;

extern bool os_orders_forecast(int64 bucket_us, const char *channel, int horizon,
							   OrdersForecast *out);

/* stock_outlook.c: one row per SKU and location */
typedef struct OutlookRow
{
	char	   *sku;
	char	   *location;
	int64		on_hand;
	int64		available;
	double		daily_demand;
	FiMethod	method;
	double		days_of_cover;	/* NaN: no demand, never runs out */
	bool		has_stockout;
	DateADT		stockout;		/* UTC date the available units run out */
	int64		safety_stock;
	int64		reorder_point;
	int64		suggested;
} OutlookRow;

extern int	os_stock_outlook(double lead_days, double service_level,
							 OutlookRow **rows);
extern double os_interval_days(Interval *iv, const char *func);
extern void os_check_service_level(double level, const char *func);

/* GUCs (outlook.c) */
extern int	ordersync_outlook_interval;
extern int	ordersync_outlook_lead_time;
extern double ordersync_outlook_service_level;
extern double ordersync_peak_units_per_hour;
extern int	ordersync_peak_buckets;
extern void os_outlook_init(void);

/* stockout.c and peak.c: one pass in the caller's transaction, with SPI */
extern int	os_check_stockouts(void);
extern int	os_prepare_peak(void);

/* outlook.c: the worker's tick, outside a transaction; never raises */
extern void os_outlook_tick(void);

#endif							/* ORDERSYNC_OUTLOOK_H */
