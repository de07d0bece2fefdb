{{ config(materialized='incremental') }}

with

events as (

    select * from {{ ref('stg_events') }}
    where {{ flower_in_window('event_at') }}

),

hourly_traffic as (

    select
        count(events.event_id) as event_count,
        count(distinct events.session_id) as session_count,
        count(distinct events.user_id) as active_user_count,
        count(case when events.event_type = 'page_view' then 1 end) as page_view_count,
        count(case when events.event_type = 'checkout' then 1 end) as checkout_count,
        {{ dbt.date_trunc('hour', 'events.event_at') }} as event_hour

    from events

    group by {{ dbt.date_trunc('hour', 'events.event_at') }}

)

select * from hourly_traffic
