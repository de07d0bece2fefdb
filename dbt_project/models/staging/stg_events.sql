with

source as (

    select * from {{ source('shop', 'events') }}

),

renamed as (

    select

        ---------- ids
        cast(event_id as bigint) as event_id,
        cast(user_id as bigint) as user_id,
        session_id,

        ---------- text
        lower(event_type) as event_type,

        ---------- timestamps
        cast(event_at as timestamp) as event_at

    from source

)

select * from renamed
