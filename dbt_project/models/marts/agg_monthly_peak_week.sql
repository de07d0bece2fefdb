{{ config(materialized='incremental') }}

-- A monthly roll-up of a weekly model: the busiest week of each month. A week belongs to the
-- month its Monday falls in.

with

weeks as (

    select * from {{ ref('agg_weekly_active_users') }}
    where {{ flower_in_window('week_start') }}

),

weeks_by_month as (

    select
        weeks.week_start,
        weeks.active_user_count,
        cast({{ dbt.date_trunc('month', 'weeks.week_start') }} as date) as month_start,
        row_number() over (
            partition by {{ dbt.date_trunc('month', 'weeks.week_start') }}
            order by weeks.active_user_count desc, weeks.week_start
        ) as rank_in_month

    from weeks

),

peak_weeks as (

    select
        weeks_by_month.week_start as peak_week_start,
        weeks_by_month.active_user_count as peak_active_user_count,
        weeks_by_month.month_start

    from weeks_by_month

    where weeks_by_month.rank_in_month = 1

)

select * from peak_weeks
