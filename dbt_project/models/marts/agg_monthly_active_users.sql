{{ config(materialized='incremental') }}

with

sessions as (

    select * from {{ ref('fct_sessions') }}
    where {{ flower_in_window('session_date') }}

),

sessions_by_month as (

    select
        sessions.session_id,
        sessions.user_id,
        sessions.is_converted,
        cast({{ dbt.date_trunc('month', 'sessions.session_date') }} as date) as month_start

    from sessions

),

monthly_active_users as (

    select
        count(distinct sessions_by_month.user_id) as active_user_count,
        count(sessions_by_month.session_id) as session_count,
        count(case when sessions_by_month.is_converted then 1 end) as converted_session_count,
        sessions_by_month.month_start

    from sessions_by_month

    group by sessions_by_month.month_start

)

select * from monthly_active_users
