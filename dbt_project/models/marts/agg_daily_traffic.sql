{{ config(materialized='incremental') }}

with

hours as (

    select * from {{ ref('agg_hourly_traffic') }}
    where {{ flower_in_window('event_hour') }}

),

ranked_hours as (

    select
        hours.*,
        row_number() over (
            partition by cast(hours.event_hour as date)
            order by hours.event_count desc, hours.event_hour
        ) as busiest_rank

    from hours

),

daily_traffic as (

    select
        sum(ranked_hours.event_count) as event_count,
        sum(ranked_hours.page_view_count) as page_view_count,
        sum(ranked_hours.checkout_count) as checkout_count,
        count(ranked_hours.event_hour) as active_hour_count,
        max(case when ranked_hours.busiest_rank = 1 then ranked_hours.event_hour end)
            as busiest_hour,
        max(case when ranked_hours.busiest_rank = 1 then ranked_hours.event_count end)
            as busiest_hour_event_count,
        cast(ranked_hours.event_hour as date) as traffic_date

    from ranked_hours

    group by cast(ranked_hours.event_hour as date)

)

select * from daily_traffic
