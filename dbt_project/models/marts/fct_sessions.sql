{{ config(materialized='incremental') }}

with

events as (

    select * from {{ ref('stg_events') }}
    where {{ flower_in_window('event_at') }}

),

sessions as (

    select
        events.session_id,
        events.user_id,
        min(events.event_at) as started_at,
        max(events.event_at) as ended_at,
        count(events.event_id) as event_count,
        count(case when events.event_type = 'page_view' then 1 end) as page_view_count,
        count(case when events.event_type = 'add_to_cart' then 1 end) as add_to_cart_count,
        count(case when events.event_type = 'checkout' then 1 end) as checkout_count

    from events

    group by events.session_id, events.user_id

),

final as (

    select
        sessions.session_id,
        sessions.user_id,
        sessions.started_at,
        sessions.ended_at,
        {{ dbt.datediff('sessions.started_at', 'sessions.ended_at', 'second') }} as duration_seconds,
        sessions.event_count,
        sessions.page_view_count,
        sessions.add_to_cart_count,
        sessions.checkout_count,
        sessions.checkout_count > 0 as is_converted,
        cast(sessions.started_at as date) as session_date

    from sessions

)

select * from final
