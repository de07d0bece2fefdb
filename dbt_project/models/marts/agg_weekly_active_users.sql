{{ config(materialized='incremental') }}

with

sessions as (

    select * from {{ ref('fct_sessions') }}
    where {{ flower_in_window('session_date') }}

),

sessions_by_week as (

    select
        sessions.session_id,
        sessions.user_id,
        sessions.is_converted,
        cast({{ dbt.date_trunc('week', 'sessions.session_date') }} as date) as week_start

    from sessions

),

weekly_active_users as (

    select
        count(distinct sessions_by_week.user_id) as active_user_count,
        count(sessions_by_week.session_id) as session_count,
        count(case when sessions_by_week.is_converted then 1 end) as converted_session_count,
        sessions_by_week.week_start

    from sessions_by_week

    group by sessions_by_week.week_start

)

select * from weekly_active_users
